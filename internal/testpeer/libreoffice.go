package testpeer

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// LibreOffice is Debian's headless LibreOffice Calc (libreoffice-calc-
// nogui), the spreadsheet program the gateway's XLSX reports are read
// back with.
type LibreOffice struct {
	prog string
}

// RequireLibreOffice finds soffice, or skips the test (fails it under
// CI).
func RequireLibreOffice(t testing.TB) *LibreOffice {
	t.Helper()
	return &LibreOffice{prog: Require(t, "soffice", "libreoffice-calc-nogui")}
}

// Convert runs soffice --headless --convert-to to on the file in, into
// dir, with a profile of its own so that parallel runs do not share one.
func (lo *LibreOffice) Convert(t testing.TB, in, to, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	profile := "file://" + filepath.Join(t.TempDir(), "lo-profile")
	cmd := exec.CommandContext(ctx, lo.prog, "-env:UserInstallation="+profile, "--headless", "--norestore",
		"--convert-to", to, "--outdir", dir, in)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("soffice --convert-to %s: %v\n%s", to, err, out.String())
	}
}

// CSVFilter converts every sheet to a CSV file of its own
// (<base>-<sheet>.csv): comma, double quote, UTF-8, from line 1, every
// text cell quoted (so a number stored as text shows), values at full
// precision rather than as shown.
const CSVFilter = `csv:Text - txt - csv (StarCalc):44,34,76,1,,0,true,true,false,false,false,-1`

// Sheets writes the workbook xlsx, has LibreOffice convert every sheet to
// CSV (CSVFilter), and returns the sheets' records by sheet name, and
// the folder the files are in.
func (lo *LibreOffice) Sheets(t testing.TB, xlsx []byte) (map[string][][]string, string) {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "report.xlsx")
	if err := os.WriteFile(in, xlsx, 0o600); err != nil {
		t.Fatal(err)
	}
	lo.Convert(t, in, CSVFilter, dir)
	out := map[string][][]string{}
	files, _ := filepath.Glob(filepath.Join(dir, "report-*.csv"))
	for _, p := range files {
		out[strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "report-"), ".csv")] = ReadCSV(t, p)
	}
	if len(out) == 0 {
		t.Fatalf("LibreOffice wrote no CSV into %s", dir)
	}
	return out, dir
}

// ReadCSV reads a CSV file whose records may differ in length.
func ReadCSV(t testing.TB, path string) [][]string {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatalf("read %s: %v", filepath.Base(path), err)
	}
	defer fh.Close()
	cr := csv.NewReader(fh)
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return recs
}
