package config

import (
	"errors"
	"strings"
	"testing"
)

// base is a valid config of 8 lines; cases that append to it start at line 9.
const base = `facility:
  id: north-shelter-01
  name: North
  timezone: Asia/Shanghai
zones:
  - id: dorm-1
store:
  dir: /var/lib/shelterwatch
`

// withDevice is base plus one valid device on lines 9-14; cases that append
// to it start at line 15.
const withDevice = base + `devices:
  - id: dorm1-smoke
    kind: smoke
    zone: dorm-1
    format: zigbee2mqtt
    topic: zigbee2mqtt/dorm1-smoke
`

// strictCases maps bad config text to the exact errors an operator sees.
// They also seed FuzzParse.
var strictCases = []struct {
	name string
	yaml string
	want []string
}{
	{
		name: "unknown key at top level",
		yaml: base + "colour: red\n",
		want: []string{`t.yaml:9: colour: unknown key`},
	},
	{
		name: "unknown key nested",
		yaml: `facility:
  id: north-shelter-01
  name: North
  timezone: Asia/Shanghai
zones:
  - id: dorm-1
    colour: blue
store:
  dir: /var/lib/shelterwatch
`,
		want: []string{`t.yaml:7: zones[0].colour: unknown key`},
	},
	{
		name: "misspelt key gets a suggestion",
		yaml: `facility:
  id: north-shelter-01
  name: North
  timezon: Asia/Shanghai
zones:
  - id: dorm-1
store:
  dir: /var/lib/shelterwatch
`,
		want: []string{
			`t.yaml:1: facility.timezone: required`,
			`t.yaml:4: facility.timezon: unknown key (did you mean timezone?)`,
		},
	},
	{
		name: "unknown key that is not a plain word",
		yaml: base + "log:\n  \"log level\": info\n",
		want: []string{`t.yaml:10: log["log level"]: unknown key`},
	},
	{
		name: "duplicate key",
		yaml: `facility:
  id: north-shelter-01
  id: north-shelter-02
  name: North
  timezone: Asia/Shanghai
zones:
  - id: dorm-1
store:
  dir: /var/lib/shelterwatch
`,
		want: []string{`t.yaml:3: facility.id: duplicate key (first at line 2)`},
	},
	{
		name: "duplicate section",
		yaml: base + "store:\n  dir: /tmp\n",
		want: []string{`t.yaml:9: store: duplicate key (first at line 7)`},
	},
	{
		name: "string for bool",
		yaml: withDevice + "    invert: maybe\n",
		want: []string{`t.yaml:15: devices[0].invert: want a boolean, got "maybe"`},
	},
	{
		name: "mapping for list",
		yaml: `facility:
  id: north-shelter-01
  name: North
  timezone: Asia/Shanghai
zones:
  id: dorm-1
store:
  dir: /var/lib/shelterwatch
`,
		want: []string{`t.yaml:5: zones: want a list, got a mapping`},
	},
	{
		name: "list for string",
		yaml: base + "log:\n  level: [info]\n",
		want: []string{`t.yaml:10: log.level: want a string, got a list`},
	},
	{
		name: "string for integer",
		yaml: base[:len(base)-1] + "\n  commit_max_batch: lots\n",
		want: []string{`t.yaml:9: store.commit_max_batch: want an integer, got "lots"`},
	},
	{
		name: "integer out of range",
		yaml: base[:len(base)-1] + "\n  commit_max_batch: 99999999999999999999\n",
		want: []string{`t.yaml:9: store.commit_max_batch: integer 99999999999999999999 out of range`},
	},
	{
		name: "not a mapping at all",
		yaml: "- facility\n- zones\n",
		want: []string{`t.yaml:1: want a mapping of sections (facility, zones, devices...), got a list`},
	},
	{
		name: "syntax error alone, with its line",
		yaml: base + "log:\n  level: info\n format: json\n",
		want: []string{`t.yaml:11: invalid YAML: did not find expected key`},
	},
	{
		name: "tab indentation",
		yaml: base + "log:\n\tlevel: info\n",
		want: []string{`t.yaml:10: invalid YAML: found character that cannot start any token`},
	},
	{
		name: "two documents",
		yaml: base + "---\nlog:\n  level: info\n",
		want: []string{`t.yaml:9: invalid YAML: a second YAML document: the file must hold exactly one`},
	},
	{
		name: "merge keys",
		yaml: base + "log: &l\n  level: info\nhttp:\n  <<: *l\n",
		want: []string{`t.yaml:12: http["<<"]: merge keys (<<) are not supported; write the keys out`},
	},
	{
		name: "duplicate zone id",
		yaml: `facility:
  id: north-shelter-01
  name: North
  timezone: Asia/Shanghai
zones:
  - id: dorm-1
  - id: dorm-2
  - id: dorm-1
store:
  dir: /var/lib/shelterwatch
`,
		want: []string{`t.yaml:8: zones[2].id: duplicate zone id "dorm-1" (first at line 6)`},
	},
	{
		name: "bad zone id and tag",
		yaml: `facility:
  id: north-shelter-01
  name: North
  timezone: Asia/Shanghai
zones:
  - id: Dorm_1
    tags: [dormitory, Secure Ward, dormitory]
store:
  dir: /var/lib/shelterwatch
`,
		want: []string{
			`t.yaml:6: zones[0].id: invalid id "Dorm_1": use lower-case letters, digits and '-', starting with a letter or digit`,
			`t.yaml:7: zones[0].tags[1]: invalid tag "Secure Ward": use lower-case letters, digits and '-'`,
			`t.yaml:7: zones[0].tags[2]: duplicate tag "dormitory"`,
		},
	},
	{
		name: "duplicate device id",
		yaml: withDevice + `  - id: dorm1-smoke
    kind: smoke
    zone: dorm-1
    format: zigbee2mqtt
    topic: zigbee2mqtt/dorm1-smoke-2
`,
		want: []string{`t.yaml:15: devices[1].id: duplicate device id "dorm1-smoke" (first at line 10)`},
	},
	{
		name: "device in unknown zone",
		yaml: base + `devices:
  - id: dorm9-smoke
    kind: smoke
    zone: dorm-9
    format: zigbee2mqtt
    topic: zigbee2mqtt/dorm9-smoke
`,
		want: []string{`t.yaml:12: devices[0].zone: unknown zone "dorm-9"`},
	},
	{
		name: "unknown kind",
		yaml: base + `devices:
  - id: dorm1-smoke
    kind: smok
    zone: dorm-1
    format: zigbee2mqtt
    topic: zigbee2mqtt/dorm1-smoke
`,
		want: []string{`t.yaml:11: devices[0].kind: unknown kind "smok" (known: availability, battery, battery_low, co, door, humidity, motion, panic, pressure, sensor_fault, smoke, tamper, temperature, water_leak)`},
	},
	{
		name: "gateway-only kind",
		yaml: base + `devices:
  - id: dorm1-smoke
    kind: fault
    zone: dorm-1
    format: native
    topic: sw/dorm1-smoke
`,
		want: []string{`t.yaml:11: devices[0].kind: unknown kind "fault" (known: availability, battery, battery_low, co, door, humidity, motion, panic, pressure, sensor_fault, smoke, tamper, temperature, water_leak)`},
	},
	{
		name: "unknown format",
		yaml: base + `devices:
  - id: dorm1-smoke
    kind: smoke
    zone: dorm-1
    format: z2m
    topic: zigbee2mqtt/dorm1-smoke
`,
		want: []string{`t.yaml:13: devices[0].format: unknown format "z2m" (known: native, zigbee2mqtt, tasmota, esphome, shelly, homie, shellygen1, openmqttgateway, zigbee2tasmota)`},
	},
	{
		name: "missing device fields",
		yaml: base + "devices:\n  - id: dorm1-smoke\n",
		want: []string{
			`t.yaml:10: devices[0].kind: required`,
			`t.yaml:10: devices[0].zone: required`,
			`t.yaml:10: devices[0].format: required`,
			`t.yaml:10: devices[0].topic: required`,
		},
	},
	{
		name: "missing facility and store",
		yaml: "zones:\n  - id: dorm-1\n",
		want: []string{
			`t.yaml: facility.id: required`,
			`t.yaml: facility.name: required`,
			`t.yaml: facility.timezone: required`,
			`t.yaml: store.dir: required`,
		},
	},
	{
		name: "empty file",
		yaml: "# nothing yet\n",
		want: []string{
			`t.yaml: facility.id: required`,
			`t.yaml: facility.name: required`,
			`t.yaml: facility.timezone: required`,
			`t.yaml: zones: at least one zone is required`,
			`t.yaml: store.dir: required`,
		},
	},
	{
		name: "bad facility id",
		yaml: strings.Replace(base, "north-shelter-01", "North Shelter", 1),
		want: []string{`t.yaml:2: facility.id: invalid id "North Shelter": use lower-case letters, digits and '-', starting with a letter or digit`},
	},
	{
		name: "bad timezone",
		yaml: strings.Replace(base, "Asia/Shanghai", "Mars/Olympus", 1),
		want: []string{`t.yaml:4: facility.timezone: unknown time zone "Mars/Olympus": use an IANA name such as Asia/Shanghai`},
	},
	{
		name: "host-dependent timezone",
		yaml: strings.Replace(base, "Asia/Shanghai", "Local", 1),
		want: []string{`t.yaml:4: facility.timezone: unknown time zone "Local": use an IANA name such as Asia/Shanghai`},
	},
	{
		name: "bad duration",
		yaml: base + "  retention: ninety days\n",
		want: []string{`t.yaml:9: store.retention: invalid duration "ninety days"`},
	},
	{
		name: "duration without unit",
		yaml: base + "  retention: 90\n",
		want: []string{`t.yaml:9: store.retention: invalid duration "90"`},
	},
	{
		name: "negative duration",
		yaml: withDevice + "    offline_after: -1h\n",
		want: []string{`t.yaml:15: devices[0].offline_after: negative duration "-1h"`},
	},
	{
		name: "zero duration is not the default",
		yaml: base + "  retention: 0s\n",
		want: []string{`t.yaml:9: store.retention: must be greater than 0, got 0s`},
	},
	{
		name: "disk budget below the engine's floor",
		yaml: base + "  disk_budget: 10MiB\n",
		want: []string{`t.yaml:9: store.disk_budget: must be at least 64MiB, got 10MiB`},
	},
	{
		name: "memory limit too small to run in",
		yaml: base + "memory_limit: 16MiB\n",
		want: []string{`t.yaml:9: memory_limit: must be 0 (no limit) or at least 64MiB, got 16MiB`},
	},
	{
		name: "bad byte size",
		yaml: base + "  disk_budget: 4 gigs\n",
		want: []string{`t.yaml:9: store.disk_budget: invalid byte size "4 gigs": unknown unit "gigs" (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)`},
	},
	{
		name: "negative byte size",
		yaml: base + "ingest:\n  max_payload_bytes: -1\n",
		want: []string{`t.yaml:10: ingest.max_payload_bytes: negative byte size "-1"`},
	},
	{
		name: "payload bigger than MQTT allows",
		yaml: base + "ingest:\n  max_payload_bytes: 1GiB\n",
		want: []string{`t.yaml:10: ingest.max_payload_bytes: must be at most 256MiB (the MQTT limit), got 1GiB`},
	},
	{
		name: "wildcards in topic",
		yaml: base + `devices:
  - id: dorm1-smoke
    kind: smoke
    zone: dorm-1
    format: zigbee2mqtt
    topic: zigbee2mqtt/+
`,
		want: []string{`t.yaml:14: devices[0].topic: topic "zigbee2mqtt/+" must not contain wildcards (+ #)`},
	},
	{
		name: "leading slash in topic",
		yaml: base + `devices:
  - id: dorm1-smoke
    kind: smoke
    zone: dorm-1
    format: zigbee2mqtt
    topic: /zigbee2mqtt/dorm1-smoke
`,
		want: []string{`t.yaml:14: devices[0].topic: topic "/zigbee2mqtt/dorm1-smoke" must not start or end with '/'`},
	},
	{
		name: "duplicate topic",
		yaml: withDevice + `  - id: dorm1-smoke-2
    kind: smoke
    zone: dorm-1
    format: zigbee2mqtt
    topic: zigbee2mqtt/dorm1-smoke
`,
		want: []string{`t.yaml:19: devices[1].topic: topic "zigbee2mqtt/dorm1-smoke" is already the topic of device "dorm1-smoke" (line 14); give each sensor of one board its own channel`},
	},
	{
		name: "birth and will messages of a device that is not an esphome node",
		yaml: withDevice + `    status_topic: zigbee2mqtt/dorm1-smoke/availability
    online_payload: up
`,
		want: []string{
			`t.yaml:15: devices[0].status_topic: only an esphome device sets its birth and will messages (format is "zigbee2mqtt")`,
			`t.yaml:16: devices[0].online_payload: only an esphome device sets its birth and will messages (format is "zigbee2mqtt")`,
		},
	},
	{
		name: "esphome birth and will messages",
		yaml: base + `devices:
  - {id: a, kind: smoke, zone: dorm-1, format: esphome, topic: node-a, status_topic: node-b/status, online_payload: "up ", offline_payload: offline}
  - {id: b, kind: smoke, zone: dorm-1, format: esphome, topic: node-b, status_topic: node-b/#}
  - {id: c, kind: smoke, zone: dorm-1, format: esphome, topic: node-c, online_payload: lost, offline_payload: lost}
  - {id: d, kind: smoke, zone: dorm-1, format: esphome, topic: node-d, offline_payload: online}
`,
		want: []string{
			`t.yaml:10: devices[0].status_topic: "node-b/status" is not under the device's topic "node-a": the gateway hears a node only on its own topic`,
			`t.yaml:10: devices[0].online_payload: payload "up " must be printable text without leading or trailing white space`,
			`t.yaml:11: devices[1].status_topic: topic "node-b/#" must not contain wildcards (+ #)`,
			`t.yaml:12: devices[2].online_payload: "lost" also means offline; give online and offline different payloads`,
			`t.yaml:13: devices[3].offline_payload: "online" also means online; give online and offline different payloads`,
		},
	},
	{
		name: "devices of one esphome node set its birth differently",
		yaml: base + `devices:
  - id: node-smoke
    kind: smoke
    zone: dorm-1
    format: esphome
    topic: dorm1-node
    channel: smoke
    online_payload: connected
  - id: node-door
    kind: door
    zone: dorm-1
    format: esphome
    topic: dorm1-node
    channel: door
    online_payload: up
`,
		want: []string{
			`t.yaml:23: devices[1].online_payload: "up", but device "node-smoke" of the same node says "connected" (line 16): a node has one birth and will`,
		},
	},
	{
		name: "bad bcrypt hash",
		yaml: withDevice + "    password_hash: hunter2\n",
		want: []string{"t.yaml:15: devices[0].password_hash: not a bcrypt hash (want $2a$, $2b$ or $2y$, cost and 53 characters of salt and hash; make one with `shelter-gateway hash-password`)"},
	},
	{
		name: "bcrypt hash with impossible cost",
		yaml: withDevice + "    password_hash: \"$2a$99$HXVmTTXUPsMMWTjIQs/QEe7wmVFV6w3L/N9GHmeKcTZXeVoHGvxyi\"\n",
		want: []string{"t.yaml:15: devices[0].password_hash: not a bcrypt hash: cost 99 is outside allowed inclusive range 4..31"},
	},
	{
		name: "broker user",
		yaml: withDevice + `broker:
  embedded:
    users:
      - username: dorm1-smoke
        publish: ["zigbee2mqtt/#/x", "a+/b"]
        subscribe: ["#"]
`,
		want: []string{
			`t.yaml:18: broker.embedded.users[0].username: "dorm1-smoke" is also a device id (devices log in with their id)`,
			`t.yaml:18: broker.embedded.users[0].password_hash: required`,
			`t.yaml:19: broker.embedded.users[0].publish[0]: invalid topic filter "zigbee2mqtt/#/x": '#' must be a whole level, and the last`,
			`t.yaml:19: broker.embedded.users[0].publish[1]: invalid topic filter "a+/b": '+' must be a whole level`,
		},
	},
	{
		name: "client id reserved twice",
		yaml: base + `broker:
  embedded:
    users:
      - {username: z2m-a, password_hash: "$2a$04$HXVmTTXUPsMMWTjIQs/QEe7wmVFV6w3L/N9GHmeKcTZXeVoHGvxyi", client_ids: [bridge]}
      - {username: z2m-b, password_hash: "$2a$04$HXVmTTXUPsMMWTjIQs/QEe7wmVFV6w3L/N9GHmeKcTZXeVoHGvxyi", client_ids: [bridge, ""]}
`,
		want: []string{
			`t.yaml:13: broker.embedded.users[1].client_ids[0]: client id "bridge" is already reserved for user "z2m-a" (line 12)`,
			`t.yaml:13: broker.embedded.users[1].client_ids[1]: empty client id`,
		},
	},
	{
		name: "unknown broker mode",
		yaml: base + "broker:\n  mode: cloud\n",
		want: []string{`t.yaml:10: broker.mode: unknown mode "cloud" (want embedded or external)`},
	},
	{
		name: "external mode without url",
		yaml: base + "broker:\n  mode: external\n",
		want: []string{`t.yaml:9: broker.external.url: required when broker.mode is external`},
	},
	{
		name: "credentials in the external url",
		yaml: base + "broker:\n  mode: external\n  external:\n    url: tcp://sw:hunter2@broker.example:1883\n",
		want: []string{`t.yaml:12: broker.external.url: credentials in the URL are not allowed: use username and password_file`},
	},
	{
		name: "external mode with missing files",
		yaml: base + `broker:
  mode: external
  external:
    url: http://broker.example
    password_file: /nonexistent/mqtt-password
    cert_file: /nonexistent/client.pem
    keep_alive: 1500ms
`,
		want: []string{
			`t.yaml:12: broker.external.url: unsupported scheme "http" (want one of tcp, ssl, tls, mqtt, mqtts, ws, wss)`,
			`t.yaml:13: broker.external.password_file: needs a username (MQTT sends no password without one)`,
			`t.yaml:13: broker.external.password_file: cannot use file "/nonexistent/mqtt-password": no such file or directory`,
			`t.yaml:14: broker.external.cert_file: needs key_file`,
			`t.yaml:14: broker.external.cert_file: cannot use file "/nonexistent/client.pem": no such file or directory`,
			`t.yaml:15: broker.external.keep_alive: must be whole seconds, at most 65535s, got 1s500ms`,
		},
	},
	{
		name: "TLS listener without files",
		yaml: base + "broker:\n  embedded:\n    tls_listen: 0.0.0.0:8883\n",
		want: []string{
			`t.yaml:11: broker.embedded.tls_listen: needs tls_cert_file and tls_key_file`,
		},
	},
	{
		name: "TLS files that do not exist",
		yaml: base + `broker:
  embedded:
    tls_listen: 0.0.0.0:8883
    tls_cert_file: /nonexistent/cert.pem
    tls_key_file: /nonexistent/key.pem
`,
		want: []string{
			`t.yaml:12: broker.embedded.tls_cert_file: cannot use file "/nonexistent/cert.pem": no such file or directory`,
			`t.yaml:13: broker.embedded.tls_key_file: cannot use file "/nonexistent/key.pem": no such file or directory`,
		},
	},
	{
		name: "no MQTT listener",
		yaml: base + "broker:\n  embedded:\n    listen: \"\"\n",
		want: []string{`t.yaml:11: broker.embedded.listen: no listener: set listen, tls_listen or both`},
	},
	{
		name: "packet cap below the payload limit",
		yaml: base + "broker:\n  embedded:\n    max_packet_bytes: 16KiB\n",
		want: []string{`t.yaml:11: broker.embedded.max_packet_bytes: must be from ingest.max_payload_bytes (64KiB) to 256MiB, got 16KiB`},
	},
	{
		name: "bad listen addresses",
		yaml: base + "broker:\n  embedded:\n    listen: localhost\n    tls_listen: :http\n",
		want: []string{
			`t.yaml:11: broker.embedded.listen: invalid address "localhost": want host:port, e.g. 127.0.0.1:1883`,
			`t.yaml:12: broker.embedded.tls_listen: invalid port in ":http": want a number 0-65535`,
			`t.yaml:12: broker.embedded.tls_listen: needs tls_cert_file and tls_key_file`,
		},
	},
	{
		name: "HTTP on the MQTT port",
		yaml: base + "http:\n  listen: 127.0.0.1:1883\n",
		want: []string{`t.yaml:10: http.listen: same address as broker.embedded.listen`},
	},
	{
		name: "bad tokens",
		yaml: base + `http:
  tokens:
    - name: console
      role: boss
      sha256: abc
    - name: console
      sha256: 59d1f194dcf921e281eb621ee321705cb911cea1d10c6958f08f7908aff2985z
`,
		want: []string{
			`t.yaml:12: http.tokens[0].role: unknown role "boss" (want viewer, inspector, supervisor, manager, admin or metrics)`,
			`t.yaml:13: http.tokens[0].sha256: want 64 hex digits (the SHA-256 of the token), got 3 characters`,
			`t.yaml:14: http.tokens[1].name: duplicate token name "console" (first at line 11)`,
			`t.yaml:14: http.tokens[1].role: required`,
			`t.yaml:15: http.tokens[1].sha256: want 64 hex digits (the SHA-256 of the token), got other characters`,
		},
	},
	{
		name: "HTTPS without its key, a metrics token with cameras",
		yaml: base + `http:
  tls_cert_file: /nonexistent/server.pem
  write_timeout: 0s
  tokens:
    - name: prometheus
      role: metrics
      sha256: 59d1f194dcf921e281eb621ee321705cb911cea1d10c6958f08f7908aff2985d
      cameras: ["*"]
    - name: inspector
      role: inspector
      sha256: 8f91fcb33573dd2bac45c0fdae2b8ace909892e2969ec383c16e63c7ab43335f
      cameras: [ward-cam]
`,
		want: []string{
			`t.yaml:10: http.tls_cert_file: needs tls_key_file`,
			`t.yaml:10: http.tls_cert_file: cannot use file "/nonexistent/server.pem": no such file or directory`,
			`t.yaml:11: http.write_timeout: must be greater than 0, got 0s`,
			`t.yaml:16: http.tokens[0].cameras: a token of role metrics reads /metrics only: it watches no camera`,
			`t.yaml:20: http.tokens[1].cameras: a token of role inspector watches no video: give it no cameras (or the role supervisor)`,
			`t.yaml:20: http.tokens[1].cameras[0]: unknown camera "ward-cam"`,
		},
	},
	{
		name: "console sessions that end before they idle out",
		yaml: base + "http:\n  session_idle: 2h\n  session_max: 1h\n",
		want: []string{`t.yaml:11: http.session_max: 1h is shorter than session_idle 2h`},
	},
	{
		name: "metrics without a token off the API listener only, and only on loopback",
		yaml: base + "http:\n  metrics_auth: none\n",
		want: []string{`t.yaml:10: http.metrics_auth: none needs metrics_listen on a loopback address: the API's listener serves /metrics only with a token`},
	},
	{
		name: "open metrics on a LAN address",
		yaml: base + "http:\n  metrics_listen: 0.0.0.0:9464\n  metrics_auth: none\n",
		want: []string{`t.yaml:10: http.metrics_listen: "0.0.0.0:9464" is not a loopback address: /metrics without a token is served only on 127.0.0.1 or [::1] (or set metrics_auth: token)`},
	},
	{
		name: "metrics on the API's address, an unknown mode",
		yaml: base + "http:\n  metrics_listen: 127.0.0.1:8080\n  metrics_auth: basic\n",
		want: []string{
			`t.yaml:10: http.metrics_listen: same address as http.listen`,
			`t.yaml:11: http.metrics_auth: unknown mode "basic" (want token or none)`,
		},
	},
	{
		name: "bad log settings",
		yaml: base + "log:\n  level: verbose\n  format: xml\n",
		want: []string{
			`t.yaml:10: log.level: unknown level "verbose" (want debug, info, warn or error)`,
			`t.yaml:11: log.format: unknown format "xml" (want text or json)`,
		},
	},
	{
		name: "several problems at once, in line order",
		yaml: `facility:
  id: north-shelter-01
  name: North
  timezone: Asia/Shanghai
  colour: red
zones:
  - id: dorm-1
devices:
  - id: dorm1-smoke
    kind: smoke
    zone: dorm-9
    format: zigbee2mqtt
    topic: zigbee2mqtt/dorm1-smoke
    invert: maybe
store:
  dir: /var/lib/shelterwatch
`,
		want: []string{
			`t.yaml:5: facility.colour: unknown key`,
			`t.yaml:11: devices[0].zone: unknown zone "dorm-9"`,
			`t.yaml:14: devices[0].invert: want a boolean, got "maybe"`,
		},
	},
	{
		name: "camera with credentials in the URL, unknown zone and transport",
		yaml: base + `cameras:
  - id: hall-cam
    zone: dorm-9
    url: rtsp://admin:12345@192.168.1.64/Streaming/Channels/101
    transport: quic
  - id: hall-cam
    zone: dorm-1
    url: http://192.168.1.65/
`,
		want: []string{
			`t.yaml:11: cameras[0].zone: unknown zone "dorm-9"`,
			`t.yaml:12: cameras[0].url: credentials in the URL are not allowed: use username and password_file`,
			`t.yaml:13: cameras[0].transport: unknown transport "quic" (want tcp, udp, or leave it out for UDP with TCP fallback)`,
			`t.yaml:14: cameras[1].id: duplicate camera id "hall-cam" (first at line 10)`,
			`t.yaml:16: cameras[1].url: unsupported scheme "http" (want rtsp or rtsps)`,
		},
	},
	{
		name: "sub streams: the main URL again, a bad URL, always on without one",
		yaml: base + `cameras:
  - id: hall-cam
    zone: dorm-1
    url: rtsp://192.168.1.64/Streaming/Channels/101
    sub_url: rtsp://192.168.1.64/Streaming/Channels/101
  - id: yard-cam
    zone: dorm-1
    url: rtsp://192.168.1.65/cam/realmonitor?channel=1&subtype=0
    sub_url: rtsp://admin:12345@192.168.1.65/cam/realmonitor?channel=1&subtype=1
  - id: door-cam
    zone: dorm-1
    url: rtsp://192.168.1.66/live
    sub_always_on: true
`,
		want: []string{
			`t.yaml:13: cameras[0].sub_url: is the main url: leave it out, or give the camera's second stream`,
			`t.yaml:17: cameras[1].sub_url: credentials in the URL are not allowed: use username and password_file`,
			`t.yaml:21: cameras[2].sub_always_on: needs sub_url`,
		},
	},
	{
		name: "TURN without credentials and a token naming an unknown camera",
		yaml: base + `video:
  advertise_ips: [203.0.113.7, gateway.example]
  ice_servers:
    - urls: [turn:turn.example:3478]
http:
  tokens:
    - name: supervisor
      role: viewer
      sha256: 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824
      cameras: [yard-cam]
`,
		want: []string{
			`t.yaml:10: video.advertise_ips[1]: not an IP address: "gateway.example"`,
			`t.yaml:12: video.ice_servers[0]: a TURN server needs credentials: secret_file, or username and credential_file`,
			`t.yaml:18: http.tokens[0].cameras[0]: unknown camera "yard-cam"`,
		},
	},
	{
		name: "influxdb target of unknown version",
		yaml: base + `influxdb:
  - id: facility
    url: http://127.0.0.1:8086
    version: 3
`,
		want: []string{`t.yaml:12: influxdb[0].version: must be 1 (InfluxDB 1.8+) or 2 (InfluxDB 2.x/3.x), got 3`},
	},
	{
		name: "influxdb 1.8 target with 2.x keys and no database",
		yaml: base + `influxdb:
  - id: facility
    url: http://127.0.0.1:8086
    version: 1
    org: province
    bucket: shelters
`,
		want: []string{
			`t.yaml:10: influxdb[0].database: required`,
			`t.yaml:13: influxdb[0].org: only for version 2`,
			`t.yaml:14: influxdb[0].bucket: only for version 2`,
		},
	},
	{
		name: "influxdb 2.x target needs org, bucket and token",
		yaml: base + `influxdb:
  - id: province
    url: https://influx.example
    version: 2
    database: shelters
`,
		want: []string{
			`t.yaml:10: influxdb[0].org: required`,
			`t.yaml:10: influxdb[0].bucket: required`,
			`t.yaml:10: influxdb[0].token_file: required`,
			`t.yaml:13: influxdb[0].database: only for version 1`,
		},
	},
	{
		name: "influxdb targets: duplicate id, bad url, bad batch size, credentials in the url",
		yaml: base + `influxdb:
  - id: facility
    url: http://127.0.0.1:8086
    version: 1
    database: shelter
  - id: facility
    url: ftp://127.0.0.1
    version: 1
    database: shelter
    batch_size: 0
    timeout: 0s
  - id: province
    url: http://gw:secret@influx.example
    version: 1
    database: db/rp
    username: gw
`,
		want: []string{
			`t.yaml:14: influxdb[1].id: duplicate influxdb target id "facility" (first at line 10)`,
			`t.yaml:15: influxdb[1].url: unsupported scheme "ftp" (want http or https)`,
			`t.yaml:18: influxdb[1].batch_size: must be from 1 to 100000, got 0`,
			`t.yaml:19: influxdb[1].timeout: must be greater than 0, got 0s`,
			`t.yaml:21: influxdb[2].url: credentials in the URL are not allowed: use username and password_file, or token_file`,
			`t.yaml:23: influxdb[2].database: must not contain '/' (set retention_policy separately)`,
			`t.yaml:24: influxdb[2].username: needs password_file`,
		},
	},
	{
		name: "rules: expressions, severities and templates checked at load, escalation in order",
		yaml: base + `rules:
  - id: cold
    kinds: [smoke]
    when: value < 16
    severity: urgent
    title: {en: "{{.Temp}}"}
  - id: dorm-cold
    when: value <
    severity: warning
    title: {en: cold}
  - id: door
    when: "true"
    severity: warning
    inhibits: [smok]
    title: {en: door}
alarms:
  escalation: [5m, 1m]
`,
		want: []string{
			`t.yaml:12: rules[0].when: invalid operation: < (mismatched types bool and int) (1:7) | value < 16 | ......^`,
			`t.yaml:13: rules[0].severity: want info, trouble, warning, critical or fire, got "urgent"`,
			`t.yaml:14: rules[0].title.en: template title.en: template: title.en:1:2: executing "title.en" at <.Temp>: can't evaluate field Temp in type engine.TemplateData`,
			`t.yaml:16: rules[1].when: unexpected token EOF (1:7) | value < | ......^`,
			`t.yaml:22: rules[2].inhibits: unknown rule "smok"`,
			`t.yaml:25: alarms.escalation[1]: must be longer than the level before, got 1m`,
		},
	},
	{
		name: "hazard list and reports",
		yaml: base + `hazards:
  cold_season: "11-01..02-30"
  rules:
    - {id: battery-low, after: -1d}
    - {id: ward-night-exits, count: -1}
    - {id: smoke-testing}
    - {id: ward-night-exits, window: 3d}
reports:
  schedule: [weekly]
  keep: -3
  department_level: 7
  mail_to: [not-an-address]
`,
		want: []string{
			`t.yaml:10: hazards.cold_season: season "11-01..02-30": 02-30 is not a day of the year`,
			`t.yaml:12: hazards.rules[0].after: negative duration "-1d"`,
			`t.yaml:13: hazards.rules[1]: count must be at least 1 and window positive`,
			`t.yaml:14: hazards.rules[2]: no such hazard rule (rules: detector-offline, battery-low, smoke-untested, ward-night-exits, doors-held-open, nuisance-alarms, camera-dark, dorm-temperature)`,
			`t.yaml:15: hazards.rules[3].id: duplicate hazard rule "ward-night-exits" (first at line 13)`,
			`t.yaml:16: reports.mail_channel: required with mail_to: the name of a notify channel of type email`,
			`t.yaml:17: reports.schedule[0]: want month, quarter or notice, got "weekly"`,
			`t.yaml:18: reports.keep: must be at least 1`,
			`t.yaml:19: reports.department_level: must be an escalation level, 0 to 2 (alarms.escalation has 2)`,
			`t.yaml:20: reports.mail_to[0]: not an e-mail address: "not-an-address"`,
		},
	},
	{
		name: "audit log rotation and retention",
		yaml: base + `alarms:
  audit:
    rotate_bytes: 64KiB
    rotate_every: 10m
    keep: -1
    max_age: 30d
`,
		want: []string{
			`t.yaml:11: alarms.audit.rotate_bytes: must be 0 (never by size) or at least 1MiB, got 64KiB`,
			`t.yaml:12: alarms.audit.rotate_every: must be 0s (never by time) or at least 1h, got 10m`,
			`t.yaml:13: alarms.audit.keep: must be 0 (keep every segment) or more, got -1`,
		},
	},
}

func TestParseStrict(t *testing.T) {
	for _, tc := range strictCases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), "t.yaml")
			if err == nil {
				t.Fatalf("Parse succeeded, want errors:\n%s", strings.Join(tc.want, "\n"))
			}
			if c != nil {
				t.Errorf("Parse returned a Config with an error")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want Errors: %v", err, err)
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
