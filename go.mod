module gitlab.com/acme/voice-agent

go 1.26.1
