package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// Signature vectors computed with the Python samples of the DingTalk and
// Feishu robot documentation (hmac, hashlib, base64, urllib.parse), not
// with this package.
func TestRobotSignatures(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"dingtalk", DingTalkSign("SEC1234567890abcdef", 1736906645123), "E1d1R/AJbgjtQ3ct/ss1DF18EW6ty/Rmmo3i4ef04jM="},
		{"feishu", FeishuSign("feishu-secret-xyz", 1736906645), "j7EZ528fkh3gHsQPMNXjpVTOf2cWaAKX58O2uWxsm7M="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("sign = %s, want %s", tc.got, tc.want)
			}
		})
	}
}

func fixedClock(ms int64) func() time.Time { return func() time.Time { return time.UnixMilli(ms) } }

func robotConfig(name, typ string, r RobotConfig) Config {
	cc := ChannelConfig{Name: name, Type: typ}
	switch typ {
	case TypeWeCom:
		cc.WeCom = r
	case TypeDingTalk:
		cc.DingTalk = r
	case TypeFeishu:
		cc.Feishu = r
	}
	return Config{Channels: []ChannelConfig{cc}}
}

func TestDingTalkRobot(t *testing.T) {
	reply := `{"errcode":0,"errmsg":"ok"}`
	rc := newReceiver(t, func(int, received) (int, map[string]string, string) { return 200, nil, reply })
	secret := "SEC1234567890abcdef"
	cfg := robotConfig("ding", TypeDingTalk, RobotConfig{URLFile: writeFile(t, "url", rc.URL+"/robot/send?access_token=tok123\n"),
		SecretFile: writeFile(t, "sec", secret), MentionMobiles: []string{"13800001111"}})
	ch := buildOne(t, cfg, Env{Now: fixedClock(1736906645123)})
	ev := event("kitchen-smoke/1", alarm.SeverityFire, alarm.EventFiring)
	if err := ch.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	r := rc.next(t, 5*time.Second)
	if r.path != "/robot/send" || r.query.Get("access_token") != "tok123" || r.query.Get("timestamp") != "1736906645123" {
		t.Fatalf("request %s?%s", r.path, r.rawQuery)
	}
	// The signature travels URL-encoded, as the documentation's quote_plus does.
	if !strings.Contains(r.rawQuery, "sign=E1d1R%2FAJbgjtQ3ct%2Fss1DF18EW6ty%2FRmmo3i4ef04jM%3D") {
		t.Fatalf("query %s lacks the URL-encoded signature", r.rawQuery)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(r.query.Get("timestamp") + "\n" + secret))
	if r.query.Get("sign") != base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
		t.Fatal("signature does not verify")
	}
	var body struct {
		MsgType  string `json:"msgtype"`
		MsgUUID  string `json:"msgUuid"`
		Markdown struct {
			Title string `json:"title"`
			Text  string `json:"text"`
		} `json:"markdown"`
		At struct {
			AtMobiles []string `json:"atMobiles"`
			IsAtAll   bool     `json:"isAtAll"`
		} `json:"at"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.MsgType != "markdown" || body.MsgUUID != EventID(ev) || !strings.HasPrefix(body.Markdown.Title, "【火警】") {
		t.Fatalf("body %s", r.body)
	}
	zh, en := strings.Index(body.Markdown.Text, "报警 kitchen-smoke/1"), strings.Index(body.Markdown.Text, "Alarm kitchen-smoke/1")
	if zh < 0 || en < 0 || zh > en {
		t.Fatalf("want Chinese then English in %q", body.Markdown.Text)
	}
	if len(body.At.AtMobiles) != 1 || !strings.Contains(body.Markdown.Text, "@13800001111") {
		t.Fatalf("mention missing: %s", r.body)
	}

	for _, tc := range []struct {
		reply      string
		ok         bool
		permanent  bool
		retryAfter time.Duration
	}{
		{`{"errcode":0,"errmsg":"ok"}`, true, false, 0},
		{`{"errcode":310000,"errmsg":"sign not match"}`, false, true, 0},
		{`{"errcode":310000,"errmsg":"keywords not in content"}`, false, true, 0},
		{`{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`, false, false, time.Minute},
		{`{"errcode":-1,"errmsg":"system busy"}`, false, false, 0},
		{`<html>bad gateway</html>`, false, false, 0},
	} {
		t.Run(tc.reply, func(t *testing.T) {
			reply = tc.reply
			err := ch.Send(context.Background(), ev)
			rc.next(t, 5*time.Second)
			if (err == nil) != tc.ok || IsPermanent(err) != tc.permanent || RetryAfter(err) != tc.retryAfter {
				t.Fatalf("err %v (permanent %v, retry after %v)", err, IsPermanent(err), RetryAfter(err))
			}
		})
	}
}

func TestFeishuRobot(t *testing.T) {
	reply := `{"code":0,"msg":"success","data":{}}`
	rc := newReceiver(t, func(int, received) (int, map[string]string, string) { return 200, nil, reply })
	cfg := robotConfig("lark", TypeFeishu, RobotConfig{URL: rc.URL + "/open-apis/bot/v2/hook/abc",
		SecretFile: writeFile(t, "sec", "feishu-secret-xyz\n"), MentionAll: true})
	ch := buildOne(t, cfg, Env{Now: fixedClock(1736906645000)})
	ev := event("door/ward-2", alarm.SeverityCritical, alarm.EventEscalated)
	ev.Level = 1
	if err := ch.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	r := rc.next(t, 5*time.Second)
	var body struct {
		Timestamp string `json:"timestamp"`
		Sign      string `json:"sign"`
		MsgType   string `json:"msg_type"`
		Content   struct {
			Post struct {
				ZhCN struct {
					Title   string                `json:"title"`
					Content [][]map[string]string `json:"content"`
				} `json:"zh_cn"`
			} `json:"post"`
		} `json:"content"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Timestamp != "1736906645" || body.Sign != "j7EZ528fkh3gHsQPMNXjpVTOf2cWaAKX58O2uWxsm7M=" {
		t.Fatalf("timestamp %s sign %s", body.Timestamp, body.Sign)
	}
	post := body.Content.Post.ZhCN
	if body.MsgType != "post" || !strings.HasPrefix(post.Title, "【升级至第1级】【紧急】") {
		t.Fatalf("body %s", r.body)
	}
	var text []string
	var atAll bool
	for _, line := range post.Content {
		for _, el := range line {
			text = append(text, el["text"])
			if el["tag"] == "at" && el["user_id"] == "all" {
				atAll = true
			}
		}
	}
	joined := strings.Join(text, "\n")
	if !strings.Contains(joined, "已升级通知第1级人员") || !strings.Contains(joined, "[Escalated to level 1]") || !atAll {
		t.Fatalf("post content %q (at all %v)", joined, atAll)
	}
	for _, tc := range []struct {
		reply     string
		ok        bool
		permanent bool
	}{
		{`{"StatusCode":0,"StatusMessage":"success"}`, true, false},
		{`{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}`, false, true},
		{`{"code":11232,"msg":"frequency limited"}`, false, false},
	} {
		t.Run(tc.reply, func(t *testing.T) {
			reply = tc.reply
			err := ch.Send(context.Background(), ev)
			rc.next(t, 5*time.Second)
			if (err == nil) != tc.ok || IsPermanent(err) != tc.permanent {
				t.Fatalf("err %v (permanent %v)", err, IsPermanent(err))
			}
		})
	}
}

func TestWeComRobot(t *testing.T) {
	reply := `{"errcode":0,"errmsg":"ok"}`
	rc := newReceiver(t, func(int, received) (int, map[string]string, string) { return 200, nil, reply })
	long := event("dorm-cold/3", alarm.SeverityWarning, alarm.EventFiring)
	long.Alarm.Body.ZH = strings.Repeat("温度过低。", 2000)
	for _, tc := range []struct {
		name    string
		cfg     RobotConfig
		ev      alarm.Event
		msgtype string
		limit   int
		mention []string
	}{
		{"markdown", RobotConfig{}, event("dorm-cold/3", alarm.SeverityWarning, alarm.EventFiring), "markdown", 4096, nil},
		{"long markdown is cut", RobotConfig{}, long, "markdown", 4096, nil},
		{"text with mentions", RobotConfig{MsgType: "text", MentionMobiles: []string{"13800001111"}, MentionAll: true},
			long, "text", 2048, []string{"13800001111", "@all"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.URL = rc.URL + "/cgi-bin/webhook/send?key=k-1"
			ch := buildOne(t, robotConfig("wecom", TypeWeCom, tc.cfg), Env{})
			if err := ch.Send(context.Background(), tc.ev); err != nil {
				t.Fatal(err)
			}
			r := rc.next(t, 5*time.Second)
			var body map[string]any
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatal(err)
			}
			part, _ := body[tc.msgtype].(map[string]any)
			content, _ := part["content"].(string)
			if body["msgtype"] != tc.msgtype || content == "" || len(content) > tc.limit || r.query.Get("key") != "k-1" {
				t.Fatalf("body %.300s (content %d bytes)", r.body, len(content))
			}
			if !strings.HasPrefix(content, "### 【警告】") && !strings.HasPrefix(content, "【警告】") {
				t.Fatalf("content starts %.60q", content)
			}
			var mentions []string
			if ms, ok := part["mentioned_mobile_list"].([]any); ok {
				for _, m := range ms {
					mentions = append(mentions, m.(string))
				}
			}
			if strings.Join(mentions, ",") != strings.Join(tc.mention, ",") {
				t.Fatalf("mentions %v, want %v", mentions, tc.mention)
			}
		})
	}
	ch := buildOne(t, robotConfig("wecom", TypeWeCom, RobotConfig{URL: rc.URL}), Env{})
	for _, tc := range []struct {
		reply     string
		permanent bool
	}{
		{`{"errcode":93000,"errmsg":"invalid webhook url"}`, true},
		{`{"errcode":45009,"errmsg":"api freq out of limit"}`, false},
	} {
		t.Run(tc.reply, func(t *testing.T) {
			reply = tc.reply
			err := ch.Send(context.Background(), event("a/1", alarm.SeverityFire, alarm.EventFiring))
			rc.next(t, 5*time.Second)
			if err == nil || IsPermanent(err) != tc.permanent {
				t.Fatalf("err %v (permanent %v)", err, IsPermanent(err))
			}
		})
	}
}
