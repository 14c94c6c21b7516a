package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/spf13/cobra"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/ingest/discover"
	"github.com/shelterwatch/shelterwatch/internal/tlsfiles"
)

// devices discover and devices import print proposed device entries for
// the installer to review; they never change the config file.

func devicesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "Propose device entries from what devices announce about themselves · 根据设备自报信息生成设备条目",
	}
	cmd.AddCommand(devicesDiscoverCmd(), devicesImportCmd())
	return cmd
}

// maxAnnouncement caps one discovery payload (a large Zigbee2MQTT
// network's bridge/devices is a few MiB).
const maxAnnouncement = 16 << 20

// brokerConn is how devices discover reaches the broker.
type brokerConn struct {
	url, username, password string
	tls                     *tlsConfig
}

type tlsConfig struct{ ca, cert, key string }

type discoverFlags struct {
	seconds      int
	configPath   string
	broker       string
	username     string
	passwordFile string
	caFile       string
}

func devicesDiscoverCmd() *cobra.Command {
	var f discoverFlags
	cmd := &cobra.Command{
		Use:   "discover",
		Short: "Listen to discovery topics for a while and print proposed device entries (YAML) for review · 收集设备自报信息并打印建议的设备条目",
		Long: `Connects to the MQTT broker as a client, subscribes to
` + strings.Join(discover.Filters(), ", ") + `
for --seconds (retained announcements arrive at once), and prints a devices:
list in the shape of the gateway config, each entry with zone: "" for the
installer to fill in. Devices the config (--config) already has are left out.
The config file is never changed.

The broker is --broker, else the config's: broker.external.url, or the
embedded broker's listen address. The embedded broker lets only its
configured users subscribe: give one whose subscribe filters cover the
discovery topics (--username, --password-file).

以 MQTT 客户端连接代理，在 --seconds 秒内收集设备自报的信息，打印与配置文件格式相同的
devices: 列表（zone 留空，由安装人员填写）；配置中已有的设备不再重复列出；不修改配置文件。
使用内置代理时，请用一个订阅权限覆盖上述发现主题的用户登录（--username、--password-file）。`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.seconds < 1 || f.seconds > 3600 {
				return errors.New("devices discover: --seconds must be from 1 to 3600")
			}
			cfg, err := loadOptionalConfig(cmd, f.configPath)
			if err != nil {
				return err
			}
			conn, err := discoverBroker(cfg, f)
			if err != nil {
				return err
			}
			parent := cmd.Context()
			if parent == nil {
				parent = context.Background()
			}
			ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
			defer stop()
			msgs, err := listen(ctx, conn, time.Duration(f.seconds)*time.Second, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return propose(cmd, cfg, msgs, fmt.Sprintf("%s for %ds", conn.url, f.seconds))
		},
	}
	cmd.Flags().IntVar(&f.seconds, "seconds", 10, "how long to listen")
	cmd.Flags().StringVar(&f.configPath, "config", "", "the gateway config: its devices are left out, its broker is used")
	cmd.Flags().StringVar(&f.broker, "broker", "", "broker URL (tcp://host:1883, ssl://host:8883); default: the config's")
	cmd.Flags().StringVar(&f.username, "username", "", "MQTT user name (default: broker.external.username of the config)")
	cmd.Flags().StringVar(&f.passwordFile, "password-file", "", "file holding the MQTT password")
	cmd.Flags().StringVar(&f.caFile, "ca-file", "", "CA certificate (PEM) to verify a TLS broker (default: the config's, else the system's)")
	return cmd
}

func devicesImportCmd() *cobra.Command {
	var from, base, configPath string
	cmd := &cobra.Command{
		Use:   "import --from zigbee2mqtt FILE",
		Short: "Print proposed device entries (YAML) from a saved Zigbee2MQTT bridge/devices list · 从保存的 Zigbee2MQTT 设备列表生成设备条目",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if from != "zigbee2mqtt" {
				return fmt.Errorf("devices import: --from %q: only zigbee2mqtt (a saved <base>/bridge/devices) can be imported", from)
			}
			if base == "" || !discover.Relevant(base+"/bridge/devices") {
				return fmt.Errorf("devices import: --base-topic %q: one topic level, like zigbee2mqtt", base)
			}
			cfg, err := loadOptionalConfig(cmd, configPath)
			if err != nil {
				return err
			}
			payload, err := readLimited(cmd.InOrStdin(), args[0])
			if err != nil {
				return fmt.Errorf("devices import: %w", err)
			}
			msgs := []discover.Message{{Topic: base + "/bridge/devices", Payload: payload, Retained: true}}
			return propose(cmd, cfg, msgs, args[0])
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "what the file is: zigbee2mqtt")
	cmd.Flags().StringVar(&base, "base-topic", "zigbee2mqtt", "the Zigbee2MQTT base topic the devices publish under")
	cmd.Flags().StringVar(&configPath, "config", "", "the gateway config: its devices are left out")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}

// loadOptionalConfig loads the config at path, or returns nil for "".
func loadOptionalConfig(cmd *cobra.Command, path string) (*config.Config, error) {
	if path == "" {
		return nil, nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), err)
		return nil, errors.New("the config is invalid: fix it first (shelter-gateway validate)")
	}
	return cfg, nil
}

// readLimited reads a file ("-": stdin) of at most maxAnnouncement bytes.
func readLimited(stdin io.Reader, path string) ([]byte, error) {
	r := stdin
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer file.Close()
		r = file
	}
	b, err := io.ReadAll(io.LimitReader(r, maxAnnouncement+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxAnnouncement {
		return nil, fmt.Errorf("%s: larger than %d MiB", path, maxAnnouncement>>20)
	}
	return b, nil
}

// discoverBroker works out where and as whom to connect.
func discoverBroker(cfg *config.Config, f discoverFlags) (brokerConn, error) {
	c := brokerConn{url: f.broker, username: f.username}
	passwordFile := f.passwordFile
	tc := tlsConfig{ca: f.caFile}
	switch {
	case c.url != "":
	case cfg == nil:
		return c, errors.New("devices discover: give --broker, or --config to use the gateway's broker / 请指定 --broker 或 --config")
	case cfg.Broker.Mode == config.ModeExternal:
		x := cfg.Broker.External
		c.url = x.URL
		c.username = cmpOr(c.username, x.Username)
		if f.username == "" && passwordFile == "" {
			passwordFile = x.PasswordFile
		}
		tc = tlsConfig{ca: cmpOr(tc.ca, x.CAFile), cert: x.CertFile, key: x.KeyFile}
	default:
		e := cfg.Broker.Embedded
		listen, scheme := e.Listen, "tcp"
		if listen == "" {
			listen, scheme = e.TLSListen, "ssl"
		}
		host, port, err := net.SplitHostPort(listen)
		if err != nil || port == "0" || port == "" {
			return c, fmt.Errorf("devices discover: the embedded broker listens on %q: give --broker with its address / 请用 --broker 指定内置代理的地址", listen)
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
		}
		c.url = scheme + "://" + net.JoinHostPort(host, port)
		if c.username == "" {
			return c, fmt.Errorf("devices discover: the embedded broker lets only its users subscribe: give --username and --password-file of a "+
				"broker.embedded.users entry whose subscribe filters cover %s / 内置代理只允许已配置的用户订阅：请用 --username 和 --password-file "+
				"指定一个订阅权限覆盖这些主题的用户", strings.Join(discover.Filters(), ", "))
		}
	}
	if passwordFile != "" {
		b, err := os.ReadFile(passwordFile)
		if err != nil {
			return c, fmt.Errorf("devices discover: read password: %w", err)
		}
		c.password = strings.TrimRight(string(b), "\r\n")
	}
	if tc != (tlsConfig{}) {
		c.tls = &tc
	}
	return c, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// heard is what listen keeps: the latest message of each topic, in the
// order topics were first heard.
type heard struct {
	mu       sync.Mutex
	order    []string
	latest   map[string]discover.Message
	messages int
	tooLarge int
}

func (h *heard) add(m paho.Message) {
	if !discover.Relevant(m.Topic()) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.messages++
	if len(m.Payload()) > maxAnnouncement {
		h.tooLarge++
		return
	}
	if _, ok := h.latest[m.Topic()]; !ok {
		h.order = append(h.order, m.Topic())
	}
	h.latest[m.Topic()] = discover.Message{Topic: m.Topic(), Payload: slices.Clone(m.Payload()), Retained: m.Retained()}
}

// listen subscribes to the discovery filters and returns what it heard
// within d (or until ctx ends).
func listen(ctx context.Context, conn brokerConn, d time.Duration, stderr io.Writer) ([]discover.Message, error) {
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	h := &heard{latest: map[string]discover.Message{}}
	o := paho.NewClientOptions().AddBroker(conn.url).
		// Never the gateway's own client id: the broker would end the
		// gateway's session to let this one in.
		SetClientID("shelterwatch-discover-" + hex.EncodeToString(id)).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(10 * time.Second).SetOrderMatters(false).
		SetUsername(conn.username).SetPassword(conn.password).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { h.add(m) })
	if conn.tls != nil {
		tc, err := tlsfiles.Client(conn.tls.ca, conn.tls.cert, conn.tls.key)
		if err != nil {
			return nil, fmt.Errorf("devices discover: %w", err)
		}
		o.SetTLSConfig(tc)
	}
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		err := tok.Error()
		if err == nil {
			err = errors.New("no answer within 15s")
		}
		return nil, fmt.Errorf("devices discover: connect to %s: %w", conn.url, err)
	}
	defer c.Disconnect(250)

	filters := map[string]byte{}
	for _, f := range discover.Filters() {
		filters[f] = 1
	}
	tok := c.SubscribeMultiple(filters, func(_ paho.Client, m paho.Message) { h.add(m) })
	if !tok.WaitTimeout(15 * time.Second) {
		return nil, errors.New("devices discover: subscribe: no answer within 15s")
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("devices discover: subscribe: %w", err)
	}
	var refused []string
	for f, code := range tok.(*paho.SubscribeToken).Result() {
		if code >= 0x80 {
			refused = append(refused, f)
		}
	}
	slices.Sort(refused)
	switch {
	case len(refused) == len(filters):
		return nil, fmt.Errorf("devices discover: the broker refused every subscription (%s): the user needs subscribe rights on them / 代理拒绝了全部订阅：该用户需要这些主题的订阅权限",
			strings.Join(refused, ", "))
	case len(refused) > 0:
		fmt.Fprintf(stderr, "devices discover: the broker refused %s: announcements there are not heard (the user needs subscribe rights on them) / 代理拒绝了部分订阅\n",
			strings.Join(refused, ", "))
	}

	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	c.Unsubscribe(discover.Filters()...).WaitTimeout(2 * time.Second)

	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]discover.Message, 0, len(h.order))
	for _, topic := range h.order {
		out = append(out, h.latest[topic])
	}
	if h.tooLarge > 0 {
		fmt.Fprintf(stderr, "devices discover: %d announcements larger than %d MiB were left out\n", h.tooLarge, maxAnnouncement>>20)
	}
	return out, nil
}

// propose feeds msgs to a Collector and prints the proposals (stdout) and
// a summary (stderr).
func propose(cmd *cobra.Command, cfg *config.Config, msgs []discover.Message, from string) error {
	stderr := cmd.ErrOrStderr()
	c := discover.NewCollector()
	var unreadable []string
	for _, m := range msgs {
		if err := c.Add(m); err != nil {
			unreadable = append(unreadable, err.Error())
		}
	}
	res := c.Propose(discoverOptions(cfg))
	if _, err := io.WriteString(cmd.OutOrStdout(), res.YAML(nil)); err != nil {
		return err
	}
	newOnes := res.New()
	fmt.Fprintf(stderr, "devices: %d announcements from %s: %d entries to add, %d already configured, %d devices skipped"+
		" / 新设备条目 %d 条，已配置 %d 条，跳过 %d 台\n",
		len(msgs), from, len(newOnes), len(res.Proposals)-len(newOnes), len(res.Skipped),
		len(newOnes), len(res.Proposals)-len(newOnes), len(res.Skipped))
	for _, s := range res.Skipped {
		fmt.Fprintf(stderr, "  skipped %s (%s): %s\n", discover.OneLine(s.Name), discover.OneLine(s.Source), discover.OneLine(s.Reason))
	}
	for _, u := range unreadable {
		fmt.Fprintf(stderr, "  unreadable: %s\n", discover.OneLine(u))
	}
	if len(msgs) == 0 {
		fmt.Fprintln(stderr, "  nothing was announced: is discovery on in the firmware, and are its announcements retained "+
			"(on the embedded broker, the publishing user's retain filters must cover them)? / 没有收到任何设备自报信息："+
			"请确认固件已开启自动发现，且发现消息为保留消息（内置代理上发布方用户的 retain 须覆盖这些主题）")
	}
	if len(newOnes) > 0 {
		fmt.Fprintln(stderr, "  set each zone, add the entries to devices: in the config, then run shelter-gateway validate"+
			" / 填写每条的 zone，加入配置文件的 devices 列表，再运行 shelter-gateway validate")
	}
	return nil
}

// discoverOptions tells the collector what the config already has.
func discoverOptions(cfg *config.Config) discover.Options {
	var o discover.Options
	if cfg == nil {
		return o
	}
	for _, d := range cfg.Devices {
		o.Configured = append(o.Configured, discover.Configured{ID: d.ID, Format: d.Format, Topic: d.Topic, Channel: d.Channel})
	}
	// A device id is its MQTT user name: it must not be a user's.
	for _, u := range cfg.Broker.Embedded.Users {
		o.Reserved = append(o.Reserved, u.Username)
	}
	return o
}
