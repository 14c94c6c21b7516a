package datasource

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Settings are a data source's jsonData:
//
//	{"gateways": [{"name": "north", "url": "http://127.0.0.1:8080"}, …],
//	 "timeout_seconds": 10}
//
// with each gateway's token in secureJsonData "token_<name>".
type Settings struct {
	Gateways       []GatewaySettings `json:"gateways"`
	TimeoutSeconds float64           `json:"timeout_seconds,omitempty"`
}

// GatewaySettings is one configured gateway.
type GatewaySettings struct {
	Name  string `json:"name"`
	URL   string `json:"url"`
	Token string `json:"-"` // from secureJsonData token_<name>
}

// validName keeps names usable in secureJsonData keys and URLs.
var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// ParseSettings decodes jsonData strictly and takes each gateway's token
// from secure (the decrypted secureJsonData). Every problem is named by
// its key; all are reported together.
func ParseSettings(jsonData []byte, secure map[string]string) (Settings, error) {
	var s Settings
	if len(strings.TrimSpace(string(jsonData))) == 0 {
		jsonData = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(jsonData)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Settings{}, fmt.Errorf("settings: jsonData: %w", err)
	}
	var errs []error
	if len(s.Gateways) == 0 {
		errs = append(errs, errors.New("settings: gateways: configure at least one gateway"))
	}
	if s.TimeoutSeconds < 0 || s.TimeoutSeconds > 300 {
		errs = append(errs, fmt.Errorf("settings: timeout_seconds: %v is not between 0 and 300", s.TimeoutSeconds))
	}
	seen := map[string]bool{}
	for i := range s.Gateways {
		g := &s.Gateways[i]
		key := fmt.Sprintf("gateways[%d]", i)
		switch {
		case g.Name == "":
			errs = append(errs, fmt.Errorf("settings: %s.name: a name is required", key))
		case !validName.MatchString(g.Name):
			errs = append(errs, fmt.Errorf("settings: %s.name: %q must be 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit", key, g.Name))
		case seen[g.Name]:
			errs = append(errs, fmt.Errorf("settings: %s.name: %q is used by another gateway", key, g.Name))
		}
		seen[g.Name] = true
		u, err := url.Parse(g.URL)
		switch {
		case g.URL == "":
			errs = append(errs, fmt.Errorf("settings: %s.url: a URL is required", key))
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, fmt.Errorf("settings: %s.url: %q must be an http:// or https:// URL with a host", key, g.URL))
		}
		if validName.MatchString(g.Name) {
			g.Token = secure["token_"+g.Name]
			if g.Token == "" {
				errs = append(errs, fmt.Errorf("settings: secureJsonData.token_%s: the token of gateway %q is missing", g.Name, g.Name))
			}
		}
	}
	if len(errs) > 0 {
		return Settings{}, errors.Join(errs...)
	}
	return s, nil
}

// Timeout is the per-request timeout (0: the client's default).
func (s Settings) Timeout() time.Duration {
	return time.Duration(s.TimeoutSeconds * float64(time.Second))
}
