package realtimetest_test

import (
	"context"
	"fmt"

	rt "gitlab.com/acme/voice-agent/agent/realtimetest"
)

// A replayed model: each response returns the recorded outputs for the
// caller's last words (an eval's recording), whatever the agent is.
func ExampleModelFunc() {
	recorded := map[string][]rt.Output{
		"":                     {rt.Say("Hello, I'm the clinic's automated assistant.")},
		"Book me for Tuesday.": {rt.CallTool("check_availability", `{"date":"2099-03-03"}`)},
		"That's all, goodbye.": {rt.CallTool("end_call", `{"reason":"caller done"}`)},
	}
	model := rt.ModelFunc(func(_ context.Context, req rt.ResponseRequest) ([]rt.Output, error) {
		said := ""
		for _, it := range req.Conversation {
			if it.Type == "message" && it.Role == "user" {
				said = it.Text
			}
		}
		outs, ok := recorded[said]
		if !ok {
			return nil, fmt.Errorf("no recorded response after %q", said) // a failed response.done
		}
		return outs, nil
	})
	srv := rt.New("sk-test", rt.WithModel(model))
	defer srv.Close()
	fmt.Println(srv.URL() != "")
	// Output: true
}
