package app

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/shelterwatch/shelterwatch/inspection/filing"
	"github.com/shelterwatch/shelterwatch/inspection/report"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// TestReportGeneratedAndMailed: a smoke alarm, then an inspector's
// on-demand report of the month. The report counts the alarm (its
// drill-down names it), it is kept and listed, its XLSX downloads, and
// the same XLSX arrives as an attachment at the department's address
// through the real SMTP server of the e-mail channel; the audit log
// records both.
func TestReportGeneratedAndMailed(t *testing.T) {
	box, addr := startMailbox(t)
	host, port, _ := net.SplitHostPort(addr)
	extra := fmt.Sprintf(`broker: {embedded: {listen: "127.0.0.1:0"}}
notify:
  channels:
    - name: duty-mail
      type: email
      email: {host: %s, port: %s, tls: none, allow_plain: true, from: "ShelterWatch <gw@shelter.example>", to: [duty@shelter.example]}
  routes:
    - {channels: [duty-mail], min_severity: fire}
reports:
  mail_channel: duty-mail
  mail_to: [minzheng@county.example]
`, host, port)
	a := startApp(t, testConfig(t, extra))
	c, err := connect(t, "tcp://"+a.BrokerAddr(), "kitchen-smoke", "kitchen-smoke", "pw-kitchen-smoke")
	if err != nil {
		t.Fatal(err)
	}
	if err := publish(t, c, "zigbee2mqtt/kitchen/smoke", `{"smoke":true,"battery":90,"linkquality":120}`); err != nil {
		t.Fatal(err)
	}
	testpeer.WaitFor(t, "the smoke alarm", 5*time.Second, func() bool { return len(activeAlarms(t, a)) > 0 })

	if code, b := api(t, a, http.MethodPost, "/api/v1/reports", `{"kind":"fortnight"}`); code != http.StatusBadRequest {
		t.Fatalf("unknown kind: %d %s", code, b)
	}
	code, b := api(t, a, http.MethodPost, "/api/v1/reports", `{"kind":"month"}`)
	var e filing.Entry
	if code != http.StatusCreated || json.Unmarshal(b, &e) != nil || e.By != "t" || e.Period.Kind != report.KindMonth {
		t.Fatalf("generate: %d %s", code, b)
	}
	if e.MailedAt.IsZero() || e.MailError != "" {
		t.Fatalf("not mailed: %+v", e)
	}

	code, b = api(t, a, http.MethodGet, "/api/v1/reports/"+e.ID, "")
	var got struct {
		Report report.Report `json:"report"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &got) != nil {
		t.Fatalf("get: %d %s", code, b)
	}
	alarms := got.Report.Table("alarms")
	if alarms == nil || len(alarms.Rows) != 1 { // smoke
		t.Fatalf("alarms table = %+v", alarms)
	}
	raised := alarms.Rows[0][alarms.Col("raised")]
	if raised.Num == nil || *raised.Num != 1 || raised.Detail == "" {
		t.Fatalf("smoke alarms raised = %+v", raised)
	}
	if d := got.Report.Table(raised.Detail); d == nil || len(d.Rows) != 1 || !strings.Contains(d.Rows[0][0].String("en", time.UTC), "smoke@dev:kitchen-smoke") {
		t.Fatalf("drill-down %s = %+v", raised.Detail, d)
	}
	code, csv := api(t, a, http.MethodGet, "/api/v1/reports/"+e.ID+"/csv?table=alarms&lang=zh", "")
	if code != http.StatusOK || !strings.Contains(string(csv), "smoke") {
		t.Fatalf("csv: %d %s", code, csv)
	}

	code, xlsx := api(t, a, http.MethodGet, "/api/v1/reports/"+e.ID+"/xlsx", "")
	if code != http.StatusOK {
		t.Fatalf("xlsx: %d", code)
	}
	f, err := excelize.OpenReader(bytes.NewReader(xlsx))
	if err != nil {
		t.Fatal(err)
	}
	title, _ := f.GetCellValue(report.SheetZH, "A1")
	f.Close()
	if !strings.Contains(title, "安全情况汇总表") {
		t.Fatalf("sheet %s A1 = %q", report.SheetZH, title)
	}

	// The spreadsheet program reads back every figure the API gives.
	checkFiguresInSpreadsheet(t, &got.Report, xlsx)

	var msg string
	select {
	case msg = <-box.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no report mail")
	}
	attached := attachment(t, msg)
	if !bytes.Equal(attached, xlsx) {
		t.Fatalf("the mailed XLSX (%d bytes) is not the kept one (%d bytes)", len(attached), len(xlsx))
	}
	var actions []string
	_ = a.Audit.Each(audit.Filter{}, func(en *audit.Entry) bool {
		if strings.HasPrefix(en.Action, "report_") {
			actions = append(actions, en.Action)
		}
		return true
	})
	if strings.Join(actions, ",") != "report_mailed,report_generated" {
		t.Fatalf("audit = %v", actions)
	}
}

// checkFiguresInSpreadsheet has LibreOffice read the workbook and
// compares every figure of every summary table of rep (as the API gave
// it) with what the spreadsheet holds on the Chinese and English sheets.
func checkFiguresInSpreadsheet(t *testing.T, rep *report.Report, xlsx []byte) {
	t.Helper()
	sheets, _ := testpeer.RequireLibreOffice(t).Sheets(t, xlsx)
	figures := 0
	for sheet, lang := range map[string]string{report.SheetZH: report.LangZH, report.SheetEN: report.LangEN} {
		recs := sheets[sheet]
		for _, tb := range rep.Tables {
			i := slices.IndexFunc(recs, func(rec []string) bool { return len(rec) > 0 && rec[0] == tb.Title.In(lang) })
			if i < 0 || i+1+len(tb.Rows) >= len(recs) {
				t.Errorf("%s: no table %q with %d rows", sheet, tb.Title.In(lang), len(tb.Rows))
				continue
			}
			for ri, row := range tb.Rows {
				rec := recs[i+2+ri]
				for ci, c := range row {
					if c.Num == nil {
						continue
					}
					figures++
					if ci >= len(rec) {
						t.Errorf("%s: %s row %d: no column %s", sheet, tb.ID, ri, tb.Columns[ci].ID)
						continue
					}
					if v, err := strconv.ParseFloat(rec[ci], 64); err != nil || v != *c.Num {
						t.Errorf("%s: %s row %d %s: spreadsheet %q, API %v", sheet, tb.ID, ri, tb.Columns[ci].ID, rec[ci], *c.Num)
					}
				}
			}
		}
	}
	if figures == 0 {
		t.Fatal("no figures compared")
	}
}

// attachment returns the one attachment of a MIME mail.
func attachment(t *testing.T, raw string) []byte {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Header.Get("To"), "minzheng@county.example") {
		t.Fatalf("mail to %q", m.Header.Get("To"))
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			t.Fatalf("no attachment in:\n%s", raw)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(p.FileName(), ".xlsx") {
			b, _ := io.ReadAll(p)
			if p.Header.Get("Content-Transfer-Encoding") == "base64" {
				if b, err = base64.StdEncoding.DecodeString(strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", ""), "\n", "")); err != nil {
					t.Fatal(err)
				}
			}
			return b
		}
	}
}
