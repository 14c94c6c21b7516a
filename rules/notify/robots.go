package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// The group robots of the chat suites Chinese organisations use: WeCom
// (企业微信), DingTalk (钉钉) and Feishu (飞书). Each gets one message per
// event with every configured language in it. All three answer HTTP 200
// with an error code in the JSON body, so the body is checked: known
// configuration errors (bad signature, keyword or IP not allowed, unknown
// robot) are permanent, rate limits and unknown codes are retried.

// robotReply covers the three robots' replies.
type robotReply struct {
	ErrCode       *int   `json:"errcode"` // WeCom, DingTalk
	ErrMsg        string `json:"errmsg"`
	Code          *int   `json:"code"` // Feishu
	Msg           string `json:"msg"`
	StatusCode    *int   `json:"StatusCode"` // Feishu's older replies
	StatusMessage string `json:"StatusMessage"`
}

// checkReply turns a robot's reply into a delivery error. permanent and
// throttled list the codes that are configuration errors and rate limits.
func checkReply(body []byte, permanent map[int]bool, throttled map[int]time.Duration) error {
	var r robotReply
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("unexpected reply%s", snippet(body))
	}
	code, msg := 0, ""
	switch {
	case r.ErrCode != nil:
		code, msg = *r.ErrCode, r.ErrMsg
	case r.Code != nil:
		code, msg = *r.Code, r.Msg
	case r.StatusCode != nil:
		code, msg = *r.StatusCode, r.StatusMessage
	default:
		return fmt.Errorf("reply without a result code%s", snippet(body))
	}
	if code == 0 {
		return nil
	}
	err := fmt.Errorf("robot error %d: %s", code, truncate(msg, 200))
	if permanent[code] {
		return Permanent(err)
	}
	return &DeliveryError{Err: err, RetryAfter: throttled[code]}
}

// robotText joins the messages for a chat: each language's title then
// body, languages separated by a rule.
func robotText(msgs []Message, markdown bool) string {
	var b strings.Builder
	for i, m := range msgs {
		if i > 0 {
			if markdown {
				b.WriteString("\n\n---\n\n")
			} else {
				b.WriteString("\n\n——————————\n\n")
			}
		}
		if markdown {
			b.WriteString("### ")
		}
		b.WriteString(m.Title)
		b.WriteString("\n")
		if markdown {
			b.WriteString("\n")
		}
		b.WriteString(m.Body)
	}
	return b.String()
}

// wecomChannel posts to a WeCom group robot (qyapi.weixin.qq.com
// /cgi-bin/webhook/send?key=...) as WeCom's 群机器人 documentation
// describes it (developer.work.weixin.qq.com/document/path/91770; the
// shapes checked against docs.zhuonian.xyz/api/wecom-webhook.html and
// hc.huoban.com/0a90/c72f/d629): {"msgtype":"markdown","markdown":
// {"content":...}} (content at most 4096 bytes) or {"msgtype":"text",
// "text":{"content":...,"mentioned_mobile_list":[...]}} (2048 bytes; only
// text messages can @ people, "@all" for everyone).
type wecomChannel struct {
	common
	url string
	cfg RobotConfig
}

// WeCom reply codes (WeCom's global error code list, and the codes
// public robot clients handle): 93000 invalid webhook URL (robot
// removed), 40008 invalid message type, 44004 empty content; 45009 is the
// per-robot rate limit (20 messages a minute), -1 "system busy".
var (
	wecomPermanent = map[int]bool{93000: true, 40008: true, 44004: true}
	wecomThrottled = map[int]time.Duration{45009: time.Minute}
)

func (w *wecomChannel) Name() string { return w.name }

func (w *wecomChannel) Send(ctx context.Context, ev alarm.Event) error {
	id := EventID(ev)
	msgs := w.render(ev, w.langs, w.env(ev, id))
	var body any
	if w.cfg.MsgType == "text" {
		mobiles := append([]string(nil), w.cfg.MentionMobiles...)
		if w.cfg.MentionAll {
			mobiles = append(mobiles, "@all")
		}
		body = map[string]any{"msgtype": "text", "text": map[string]any{
			"content": truncate(robotText(msgs, false), 2048), "mentioned_mobile_list": mobiles}}
	} else {
		body = map[string]any{"msgtype": "markdown", "markdown": map[string]any{
			"content": truncate(robotText(msgs, true), 4096)}}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return Permanent(err)
	}
	reply, err := w.http.post(ctx, w.url, b, nil)
	if err != nil {
		return err
	}
	return checkReply(reply, wecomPermanent, wecomThrottled)
}

// dingtalkChannel posts to a DingTalk custom robot (oapi.dingtalk.com
// /robot/send?access_token=...), following DingTalk's "custom robots send
// group messages" reference (help.dingtalk.io/open/development/
// custom-robots-send-group-messages) and its 加签 section as republished
// at apifox.com/apidoc/docs-site/467052/doc-3550006: msgtype markdown
// {"title","text"} or text {"content"}, "at" {"atMobiles","isAtAll"} (a
// markdown text must also contain "@<mobile>" for the mention to show), and
// "msgUuid" as the idempotency key, so a retry after a lost reply does not
// post twice. With a secret, the "加签" signature goes in the query
// (timestamp, sign): see DingTalkSign.
type dingtalkChannel struct {
	common
	url    string
	secret string
	cfg    RobotConfig
}

// DingTalk reply codes (as robot clients and the reference above report
// them): 310000 is a failed security check (keyword missing, signature
// mismatch, IP not allowed), 40035 a missing access_token; 130101 "send
// too fast" (over 20 messages a minute, after which the robot is
// throttled for 10 minutes).
var (
	dingtalkPermanent = map[int]bool{310000: true, 40035: true}
	dingtalkThrottled = map[int]time.Duration{130101: time.Minute}
)

// DingTalkSign is the "加签" signature of a DingTalk robot request: the
// HMAC-SHA256, keyed with the secret, of "<timestamp ms>\n<secret>",
// base64-encoded. It goes URL-encoded in the query with the timestamp.
func DingTalkSign(secret string, timestampMs int64) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestampMs, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func (d *dingtalkChannel) Name() string { return d.name }

func (d *dingtalkChannel) Send(ctx context.Context, ev alarm.Event) error {
	id := EventID(ev)
	msgs := d.render(ev, d.langs, d.env(ev, id))
	at := map[string]any{"atMobiles": d.cfg.MentionMobiles, "isAtAll": d.cfg.MentionAll}
	if d.cfg.MentionMobiles == nil {
		at["atMobiles"] = []string{}
	}
	var mention string
	for _, m := range d.cfg.MentionMobiles {
		mention += " @" + m
	}
	var body map[string]any
	if d.cfg.MsgType == "text" {
		body = map[string]any{"msgtype": "text", "text": map[string]any{
			"content": truncate(robotText(msgs, false), 18000) + mention}}
	} else {
		// DingTalk's markdown needs a blank line for a line break.
		text := strings.ReplaceAll(robotText(msgs, true), "\n", "\n\n")
		body = map[string]any{"msgtype": "markdown", "markdown": map[string]any{
			"title": truncate(msgs[0].Title, 200), "text": truncate(text, 18000) + mention}}
	}
	body["at"] = at
	body["msgUuid"] = id
	b, err := json.Marshal(body)
	if err != nil {
		return Permanent(err)
	}
	target := d.url
	if d.secret != "" {
		u, err := url.Parse(d.url)
		if err != nil {
			return Permanent(errors.New("bad URL"))
		}
		ts := d.now().UnixMilli()
		q := u.Query()
		q.Set("timestamp", strconv.FormatInt(ts, 10))
		q.Set("sign", DingTalkSign(d.secret, ts))
		u.RawQuery = q.Encode() // URL-encodes the base64 signature
		target = u.String()
	}
	reply, err := d.http.post(ctx, target, b, nil)
	if err != nil {
		return err
	}
	return checkReply(reply, dingtalkPermanent, dingtalkThrottled)
}

// feishuChannel posts to a Feishu custom bot (open.feishu.cn/open-apis
// /bot/v2/hook/<id>), following Feishu's 自定义机器人使用指南
// (open.feishu.cn/document/client-docs/bot-v3/add-custom-bot; the signing
// steps and Python sample as quoted at createh5.com/post/277.html, the
// post shape as in the Feishu FAQ at apifox.com/apidoc/docs-site/532425):
// msg_type
// "post" with content.post.zh_cn {"title","content":[[{"tag":"text",...}]]}
// or "text" with content.text; with a secret, "timestamp" (seconds) and
// "sign" in the body: see FeishuSign.
type feishuChannel struct {
	common
	url    string
	secret string
	cfg    RobotConfig
}

// Feishu reply codes: 19021 "sign match fail or timestamp is not within
// one hour from current time"; 11232 is the message rate limit.
var (
	feishuPermanent = map[int]bool{19021: true}
	feishuThrottled = map[int]time.Duration{11232: 10 * time.Second}
)

// FeishuSign is the signature of a Feishu custom bot request: the
// HMAC-SHA256 keyed with "<timestamp s>\n<secret>" of an empty message,
// base64-encoded.
func FeishuSign(secret string, timestampSec int64) string {
	m := hmac.New(sha256.New, []byte(strconv.FormatInt(timestampSec, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func (f *feishuChannel) Name() string { return f.name }

func (f *feishuChannel) Send(ctx context.Context, ev alarm.Event) error {
	id := EventID(ev)
	msgs := f.render(ev, f.langs, f.env(ev, id))
	body := map[string]any{}
	if f.cfg.MsgType == "text" {
		text := truncate(robotText(msgs, false), 18000)
		if f.cfg.MentionAll {
			text += ` <at user_id="all">所有人</at>`
		}
		body["msg_type"] = "text"
		body["content"] = map[string]any{"text": text}
	} else {
		var lines [][]map[string]string
		for i, m := range msgs {
			if i > 0 {
				lines = append(lines, []map[string]string{{"tag": "text", "text": "——————————"}},
					[]map[string]string{{"tag": "text", "text": m.Title}})
			}
			for _, l := range strings.Split(truncate(m.Body, 8000), "\n") {
				lines = append(lines, []map[string]string{{"tag": "text", "text": l}})
			}
		}
		if f.cfg.MentionAll {
			lines = append(lines, []map[string]string{{"tag": "at", "user_id": "all", "user_name": "所有人"}})
		}
		body["msg_type"] = "post"
		body["content"] = map[string]any{"post": map[string]any{"zh_cn": map[string]any{
			"title": truncate(msgs[0].Title, 200), "content": lines}}}
	}
	if f.secret != "" {
		ts := f.now().Unix()
		body["timestamp"] = strconv.FormatInt(ts, 10)
		body["sign"] = FeishuSign(f.secret, ts)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return Permanent(err)
	}
	reply, err := f.http.post(ctx, f.url, b, nil)
	if err != nil {
		return err
	}
	return checkReply(reply, feishuPermanent, feishuThrottled)
}
