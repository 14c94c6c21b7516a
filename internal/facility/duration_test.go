package facility

import (
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		str     string
		wantErr string
	}{
		{in: "90d", want: 90 * 24 * time.Hour, str: "90d"},
		{in: "1d", want: 24 * time.Hour, str: "1d"},
		{in: "1d12h", want: 36 * time.Hour, str: "1d12h"},
		{in: "25h", want: 25 * time.Hour, str: "1d1h"},
		{in: "1h30m", want: 90 * time.Minute, str: "1h30m"},
		{in: "1.5s", want: 1500 * time.Millisecond, str: "1s500ms"},
		{in: "0d", want: 0, str: "0s"},
		{in: "0", want: 0, str: "0s"},
		{in: "10us", want: 10 * time.Microsecond, str: "10us"},
		{in: "200d", want: 200 * 24 * time.Hour, str: "200d"},
		{in: "-1h", wantErr: `negative duration "-1h"`},
		{in: "1d-1h", wantErr: `invalid duration "1d-1h"`},
		{in: "30", wantErr: `invalid duration "30"`},
		{in: "", wantErr: `invalid duration ""`},
		{in: "1.5d", wantErr: `invalid duration "1.5d"`},
		{in: "ninety days", wantErr: `invalid duration "ninety days"`},
		// Overflow is refused, never wrapped into a negative duration.
		{in: "200000d", wantErr: `invalid duration "200000d"`},
		{in: "999999999d", wantErr: `invalid duration "999999999d"`},
		{in: "106751d23h47m17s", wantErr: `invalid duration "106751d23h47m17s"`},
		{in: "99999999999999999999d", wantErr: `invalid duration "99999999999999999999d"`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			d, err := ParseDuration(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Errorf("ParseDuration(%q) = %v, %v; want error %s", tc.in, d, err, tc.wantErr)
				}
				return
			}
			if err != nil || d.Std() != tc.want || d.String() != tc.str {
				t.Errorf("ParseDuration(%q) = %v (%s), %v; want %v (%s)", tc.in, d.Std(), d, err, tc.want, tc.str)
			}
			if back, err := ParseDuration(d.String()); err != nil || back != d {
				t.Errorf("String %q does not parse back: %v, %v", d, back, err)
			}
			var u Duration
			if err := u.UnmarshalText([]byte(tc.in)); err != nil || u != d {
				t.Errorf("UnmarshalText(%q) = %v, %v; want %v", tc.in, u, err, d)
			}
		})
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90d", "1d12h", "1.5s", "-1h", "200000d", "106751d23h47m16s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v: negative", s, d.Std())
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v; its String %q reads back as %v, %v", s, d.Std(), d, back, err)
		}
	})
}
