// Command voice-agent answers a behavioral-health clinic's phone line on the
// OpenAI Realtime API (SIP calls, server-side sideband WebSocket).
//
// Configuration comes from the environment (see agent/README.md); the
// build stamps version and commit with
//
//	go build -ldflags "-X main.version=1.2.3 -X main.commit=abc1234" ./agent/cmd/voice-agent
//
// Usage:
//
//	voice-agent                          serve (the phone line)
//	voice-agent -version                 print version and commit
//	voice-agent import-schedule FILE     import providers and slots from a CSV file ("-": stdin)
//	voice-agent messages [-since T]      print the messages taken for the front desk as CSV
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"gitlab.com/acme/voice-agent/agent/config"
	"gitlab.com/acme/voice-agent/agent/metrics"
	"gitlab.com/acme/voice-agent/agent/realtime"
	"gitlab.com/acme/voice-agent/agent/schedule"
	"gitlab.com/acme/voice-agent/agent/service"
	"gitlab.com/acme/voice-agent/agent/session"
	"gitlab.com/acme/voice-agent/agent/tools"
	"gitlab.com/acme/voice-agent/agent/webhook"
)

// Set by the build with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "import-schedule":
			return importSchedule(args[1:], getenv, os.Stdin, stdout, stderr)
		case "messages":
			return exportMessages(args[1:], getenv, stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("voice-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	showVersion := fs.Bool("version", false, "print version and commit, then exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "voice-agent: unknown command %q: use import-schedule FILE, messages, -version, or no argument to serve\n", fs.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "voice-agent %s (commit %s)\n", version, commit)
		return 0
	}
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "voice-agent: invalid configuration:\n%v\n", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("service", "voice-agent")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("voice-agent stopped", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	store, err := schedule.Open(ctx, cfg.DBPath)
	if err != nil {
		return err
	}
	defer func() { _ = store.Close() }()
	if cfg.Demo {
		if seeded, err := store.SeedIfEmpty(ctx, schedule.DemoState(time.Now(), cfg.Location)); err != nil {
			return err
		} else if seeded {
			log.Warn("VOICE_AGENT_DEMO=1: empty schedule seeded with the fictional demo clinic")
		}
	}
	if providers, err := store.Providers(ctx); err != nil {
		return err
	} else if len(providers) == 0 {
		log.Warn("the schedule is empty: callers will hear that nothing is available; import one with `voice-agent import-schedule FILE`")
	}
	verifier, err := webhook.NewVerifier(cfg.WebhookSecret, nil)
	if err != nil {
		return fmt.Errorf("OPENAI_WEBHOOK_SECRET: %w", err)
	}
	m := metrics.New(version, commit)
	execOpts := []tools.Option{tools.WithCrisisTarget(cfg.CrisisURI), tools.WithLocation(cfg.Location)}
	if cfg.TransferURI != "" {
		execOpts = append(execOpts, tools.WithFrontDesk(cfg.TransferURI))
	}
	svc, err := service.New(service.Options{
		Calls:           realtime.NewCalls(cfg.BaseURL, cfg.APIKey, nil),
		Store:           store,
		Verifier:        verifier,
		Metrics:         m,
		Logger:          log,
		Session:         session.Default(),
		MaxCalls:        cfg.MaxCalls,
		ExecutorOptions: execOpts,
		Version:         version,
		Commit:          commit,
		Location:        cfg.Location,
		StaffToken:      cfg.StaffToken,
		RequireSRTP:     cfg.RequireSRTP,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on VOICE_AGENT_ADDR %q: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           svc.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	log.Info("listening", "addr", ln.Addr().String(), "version", version, "commit", commit, "max_calls", cfg.MaxCalls,
		"time_zone", cfg.Location.String(), "staff_endpoints", cfg.StaffToken != "", "require_srtp", cfg.RequireSRTP)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "active_calls", svc.ActiveCalls(), "timeout", cfg.ShutdownTimeout.String())
	svc.Drain()
	hctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(hctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", err)
	}
	cctx, cancel2 := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel2()
	if err := svc.Shutdown(cctx); err != nil {
		log.Warn("calls cut at shutdown", "err", err)
	}
	log.Info("stopped")
	return nil
}
