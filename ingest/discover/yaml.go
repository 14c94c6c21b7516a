package discover

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// YAML renders the result as a devices: list in the shape of the gateway
// config, for an installer to review and paste: one comment per entry
// saying where it came from, then the configured devices it leaves out
// and the announcements it could not use. zone gives an entry's zone
// (nil, or "" for an entry: left for the installer, which validate
// refuses until it is set).
func (res Result) YAML(zone func(Proposal) string) string {
	var b strings.Builder
	b.WriteString("# Device entries proposed from what the devices announce. Review each one, set its\n")
	b.WriteString("# zone, and add it to the devices: list of the gateway config. shelter-gateway validate\n")
	b.WriteString("# refuses the file while a zone is empty. 请逐条核对，填写 zone（区域）后加入配置文件的 devices 列表。\n")
	newOnes := res.New()
	if len(newOnes) == 0 {
		b.WriteString("devices: []\n")
	} else {
		b.WriteString("devices:\n")
	}
	loginShown := map[string]bool{}
	for _, p := range newOnes {
		fmt.Fprintf(&b, "  # %s\n", OneLine(describe(p)))
		// The keys of config.Device, in the sample config's order.
		fmt.Fprintf(&b, "  - id: %s\n", scalar(p.ID))
		if p.Name != "" {
			fmt.Fprintf(&b, "    name: %s\n", scalar(p.Name))
		}
		fmt.Fprintf(&b, "    kind: %s\n", scalar(string(p.Kind)))
		if z := zoneOf(zone, p); z != "" {
			fmt.Fprintf(&b, "    zone: %s\n", scalar(z))
		} else {
			b.WriteString("    zone: \"\"  # TODO: set the zone\n")
		}
		fmt.Fprintf(&b, "    format: %s\n", scalar(p.Format))
		fmt.Fprintf(&b, "    topic: %s\n", scalar(p.Topic))
		if p.Channel != "" {
			fmt.Fprintf(&b, "    channel: %s\n", scalar(p.Channel))
		}
		for _, n := range p.Notes {
			fmt.Fprintf(&b, "    # note: %s\n", OneLine(n))
		}
		if board := p.Format + "\x00" + p.Topic; p.OwnLogin && !loginShown[board] {
			loginShown[board] = true
			fmt.Fprintf(&b, "    # password_hash: on the embedded broker the board logs in as %s; shelter-gateway hash-password --generate\n", scalar(p.ID))
		}
	}
	var configured []Proposal
	for _, p := range res.Proposals {
		if p.Configured != "" {
			configured = append(configured, p)
		}
	}
	if len(configured) > 0 {
		b.WriteString("# Already configured, left out:\n")
		for _, p := range configured {
			fmt.Fprintf(&b, "#   %s: %s %s%s\n", OneLine(p.ID), p.Format, OneLine(p.Topic), OneLine(channelSuffix(p.Channel)))
		}
	}
	if len(res.Skipped) > 0 {
		b.WriteString("# Announced, but not proposed:\n")
		for _, s := range res.Skipped {
			fmt.Fprintf(&b, "#   %s (%s): %s\n", OneLine(s.Name), OneLine(s.Source), OneLine(s.Reason))
		}
	}
	return b.String()
}

func zoneOf(zone func(Proposal) string, p Proposal) string {
	if zone == nil {
		return ""
	}
	return zone(p)
}

func channelSuffix(ch string) string {
	if ch == "" {
		return ""
	}
	return " channel " + ch
}

// describe says where a proposal came from, for its comment.
func describe(p Proposal) string {
	var what []string
	if s := strings.TrimSpace(p.Vendor + " " + p.Model); s != "" {
		what = append(what, s)
	}
	if p.Ident != "" {
		what = append(what, p.Ident)
	}
	var kinds []string
	for _, k := range p.Reports {
		kinds = append(kinds, string(k))
	}
	s := "from " + p.Source
	if len(what) > 0 {
		s += ": " + strings.Join(what, ", ")
	}
	return s + "; reports " + strings.Join(kinds, ", ")
}

// scalar renders s as a YAML scalar, quoted where YAML needs it.
func scalar(s string) string {
	out, err := yaml.Marshal(s)
	if err != nil {
		return fmt.Sprintf("%q", s)
	}
	return strings.TrimSuffix(string(out), "\n")
}

// OneLine makes s safe inside a YAML comment or a terminal line.
func OneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}
