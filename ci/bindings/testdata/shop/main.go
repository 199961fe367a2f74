// Package main is a tiny dependency module used to test the bindings: it
// has what the voice module lacks (a required constructor argument, a void
// function, a self-chaining method, lists of objects, namespacing cases).
package main

import "context"

// Shop is the main object.
type Shop struct {
	// Name of the shop.
	Name string
}

// ShopItem starts with the module's name: it is namespaced as <dep>Item.
type ShopItem struct{}

// Shopper starts with the module's name but not at a word boundary.
type Shopper struct{}

// New opens the shop.
func New(
	// City of the shop.
	city string,
	// Opening hour.
	//
	// +optional
	// +default=9
	opens int,
) *Shop {
	return &Shop{Name: city}
}

// Close closes the shop.
func (s *Shop) Close(ctx context.Context) error { return nil }

// WithName renames the shop.
func (s *Shop) WithName(
	// New name.
	name string,
) *Shop {
	return s
}

// Items lists the items.
func (s *Shop) Items() []*ShopItem { return nil }

// Visitor returns a shopper.
func (s *Shop) Visitor(
	// Shopper's ID.
	//
	// +optional
	visitorId string,
) (*Shopper, error) {
	return &Shopper{}, nil
}

// Price of the item.
func (i *ShopItem) Price(
	ctx context.Context,
	// Currency.
	//
	// +optional
	// +default="EUR"
	currency string,
	// Discount rate.
	//
	// +optional
	discount float64,
) (float64, error) {
	return 1, nil
}

// Tags of the shopper.
func (s *Shopper) Tags(
	// Only these.
	//
	// +optional
	filter []string,
) []string {
	return filter
}

func main() {}
