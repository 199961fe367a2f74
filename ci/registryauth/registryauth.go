// Package registryauth writes the docker config.json that hands registry
// credentials to tools such as cosign (through DOCKER_CONFIG), so that no
// credential ever appears on a command line.
package registryauth

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// DockerHubKey is the key Docker Hub credentials live under in config.json.
const DockerHubKey = "https://index.docker.io/v1/"

// DockerConfig returns a config.json with basic credentials for one
// registry host (e.g. "registry.gitlab.com" or "127.0.0.1:5000"). The
// result holds the secret: keep it in a secret, never in a layer or log.
func DockerConfig(registry, username, password string) ([]byte, error) {
	registry = strings.TrimSpace(registry)
	if registry == "" || strings.ContainsAny(registry, "/ \t\n@") {
		return nil, fmt.Errorf("registry host %q must be a host[:port] such as registry.gitlab.com ($CI_REGISTRY)", registry)
	}
	if username == "" || password == "" {
		return nil, fmt.Errorf("registry %s: both a username and a password are needed (e.g. --username $CI_REGISTRY_USER --password env://CI_REGISTRY_PASSWORD)", registry)
	}
	if strings.Contains(username, ":") {
		return nil, fmt.Errorf("registry username %q must not contain ':'", username)
	}
	key := registry
	if registry == "index.docker.io" || registry == "docker.io" {
		key = DockerHubKey
	}
	cfg := map[string]map[string]map[string]string{
		"auths": {key: {"auth": base64.StdEncoding.EncodeToString([]byte(username + ":" + password))}},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode docker config: %w", err)
	}
	return b, nil
}
