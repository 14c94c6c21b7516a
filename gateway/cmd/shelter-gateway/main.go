// Command shelter-gateway is the ShelterWatch edge gateway.
//
//	shelter-gateway run --config /etc/shelterwatch/shelterwatch.yaml
//	shelter-gateway validate --config shelterwatch.yaml
//	shelter-gateway demo
//	shelter-gateway hash-password < password.txt
//	shelter-gateway audit verify --config shelterwatch.yaml
//	shelter-gateway cert ca --dir /etc/shelterwatch/tls
//	shelter-gateway cert server --dir /etc/shelterwatch/tls --host gw.lan,192.168.1.20
//	shelter-gateway devices discover --seconds 10 --config shelterwatch.yaml --username installer --password-file pw
//	shelter-gateway devices import --from zigbee2mqtt devices.json --config shelterwatch.yaml
//	shelter-gateway backup --config shelterwatch.yaml --to facility.swbk [--with-secrets]
//	shelter-gateway restore --config shelterwatch.yaml --from facility.swbk [--with-config] [--replace]
//	shelter-gateway version
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/gateway/app"
	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/gateway/demo"
	"github.com/shelterwatch/shelterwatch/internal/sdnotify"
)

func main() {
	if err := root().Execute(); err != nil {
		os.Exit(1)
	}
}

func root() *cobra.Command {
	cmd := &cobra.Command{
		Use:           "shelter-gateway",
		Short:         "ShelterWatch edge gateway: sensors, alarms and video for relief stations",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	cmd.AddCommand(runCmd(), validateCmd(), demoCmd(), hashCmd(), versionCmd(), certCmd())
	cmd.AddCommand(auditCmd(), userCmd(), devicesCmd(), backupCmd(), restoreCmd())
	return cmd
}

func newLogger(w io.Writer, l config.Log) *slog.Logger {
	o := &slog.HandlerOptions{Level: l.SlogLevel()}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// reloadOnHangup reloads the rules file on every SIGHUP until ctx ends. A
// rules file with errors is refused and logged; the running rules stay.
func reloadOnHangup(ctx context.Context, a *app.App, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			sdnotify.Reloading()
			if err := a.ReloadRules(ctx); err != nil {
				log.Error("rules: reload refused; the running rules stay", "err", err)
			}
			sdnotify.Ready("taking readings (rules reloaded)")
		}
	}
}

// notifySystemd tells systemd (Type=notify) when the gateway takes
// readings and when it stops, and pings its watchdog while the core
// answers. Outside systemd it does nothing.
func notifySystemd(ctx context.Context, a *app.App, log *slog.Logger) {
	select {
	case <-a.Ready():
		sdnotify.Ready("taking readings")
	case <-ctx.Done():
		return
	}
	if err := sdnotify.Watchdog(ctx, a.Alive, log); err != nil {
		log.Error("gateway: systemd watchdog", "err", err)
	}
	<-ctx.Done()
	sdnotify.Stopping()
}

// who names the person at the terminal for the audit log: "cli:<user>".
func who() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli"
}

// signalContext is cancelled by SIGINT or SIGTERM (graceful shutdown).
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func runCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the gateway with a config file",
		RunE: func(cmd *cobra.Command, _ []string) error {
			app.TuneRuntime()
			cfg, err := config.Load(path)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return errors.New("refusing to start with an invalid config")
			}
			log := newLogger(cmd.ErrOrStderr(), cfg.Log)
			log.Info("gateway: starting", "config", path, "settings", cfg)
			if limit, fromEnv := app.ApplyMemoryLimit(int64(cfg.MemoryLimit)); limit < math.MaxInt64 {
				log.Info("gateway: soft memory limit", "bytes", limit, "from_GOMEMLIMIT", fromEnv)
			}
			// Everything the gateway writes (the store, alarm state, the
			// audit log) is its own: readings of residents and who watched
			// which camera are nobody else's business on the box.
			syscall.Umask(0o077)
			warnReadable(log, append([]string{path}, cfg.SecretFiles()...))
			a, err := app.New(cfg, log)
			if err != nil {
				log.Error("gateway: start failed", "err", err)
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			var wg sync.WaitGroup
			wg.Go(func() { reloadOnHangup(ctx, a, log) })
			wg.Go(func() { notifySystemd(ctx, a, log) })
			err = a.Run(ctx)
			stop() // the gateway may have stopped on its own: end the others too
			wg.Wait()
			return err
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "config file (YAML)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func validateCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a config file and print every problem at once",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := config.Load(path); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return errors.New("config is invalid")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", path)
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "config file (YAML)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func demoCmd() *cobra.Command {
	var o demo.Options
	var jsonLog bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a demo facility: embedded broker, simulated sensors and cameras, local store",
		RunE: func(cmd *cobra.Command, _ []string) error {
			format := "text"
			if jsonLog {
				format = "json"
			}
			o.Logger = newLogger(cmd.ErrOrStderr(), config.Log{Level: "info", Format: format})
			o.Out = cmd.OutOrStdout()
			// The demo runs as a facility's gateway would, within the
			// default soft memory limit (GOMEMLIMIT wins).
			app.ApplyMemoryLimit(config.DefaultMemoryLimit)
			ctx, stop := signalContext()
			defer stop()
			return demo.Run(ctx, o)
		},
	}
	cmd.Flags().StringVar(&o.DataDir, "data-dir", "", "keep the demo's store here (default: a temporary directory removed at exit)")
	cmd.Flags().StringVar(&o.HTTPListen, "http", "127.0.0.1:8080", "HTTP listen address")
	cmd.Flags().StringVar(&o.MQTTListen, "mqtt", "127.0.0.1:1883", "embedded MQTT broker listen address")
	cmd.Flags().StringVar(&o.WebRTCUDP, "webrtc-udp", "127.0.0.1:8189", "UDP address for WebRTC viewers of the simulated cameras")
	cmd.Flags().DurationVar(&o.Interval, "interval", 5*time.Second, "mean period between a simulated sensor's reports")
	cmd.Flags().DurationVar(&o.EventEvery, "event-every", time.Minute, "mean period between simulated events")
	cmd.Flags().BoolVar(&jsonLog, "json", false, "log as JSON")
	return cmd
}

func hashCmd() *cobra.Command {
	var generate bool
	var cost int
	cmd := &cobra.Command{
		Use:   "hash-password",
		Short: "Print the bcrypt hash of a password read from stdin (for password_hash in the config)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var pw string
			if generate {
				b := make([]byte, 18)
				if _, err := rand.Read(b); err != nil {
					return err
				}
				pw = hex.EncodeToString(b)
				fmt.Fprintf(cmd.ErrOrStderr(), "password (give it to the device, it is not stored): %s\n", pw)
			} else {
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("read password: %w", err)
				}
				pw = strings.TrimRight(line, "\r\n")
				if len(pw) < 12 {
					return errors.New("password must be at least 12 characters")
				}
			}
			h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
			if err != nil {
				return fmt.Errorf("hash password: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(h))
			return nil
		},
	}
	cmd.Flags().BoolVar(&generate, "generate", false, "generate a random password and print it on stderr")
	cmd.Flags().IntVar(&cost, "cost", 12, "bcrypt cost")
	return cmd
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "shelter-gateway", app.Version)
		},
	}
}

// warnReadable warns about each file that every user of the machine may
// read: the config (device password hashes, token digests) and the files
// holding secrets.
func warnReadable(log *slog.Logger, files []string) {
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.Mode().Perm()&0o004 != 0 {
			log.Warn("gateway: file readable by every user of this machine; make it private (chmod 600)",
				"file", f, "mode", st.Mode().Perm().String())
		}
	}
}
