package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/verify"
)

// message is one notification to send.
type message struct {
	Event
	HeldBack int // events of the same (type, target) held back before it
}

// Body is a webhook notification's JSON body.
type Body struct {
	Type   string    `json:"type"`
	Target string    `json:"target"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail"`
	// HeldBack counts the notifications of this type and target that
	// min_interval held back since the previous one.
	HeldBack int `json:"held_back,omitempty"`
}

// SlackBody is a slack notification's JSON body.
type SlackBody struct {
	Text string `json:"text"`
}

// sender sends one endpoint's notifications, one at a time, from its
// own queue.
type sender struct {
	e      Endpoint
	n      *Notifier
	signer *verify.Signer
	client *http.Client
	queue  chan message
	done   chan struct{}
}

func newSender(e Endpoint, n *Notifier) (*sender, error) {
	signer, err := verify.NewSigner(e.SigningSecrets)
	if err != nil {
		return nil, err
	}
	return &sender{
		e: e, n: n, signer: signer,
		client: &http.Client{
			Timeout:       n.opts.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		queue: make(chan message, n.opts.QueueSize),
		done:  make(chan struct{}),
	}, nil
}

func (s *sender) same(e Endpoint) bool { return reflect.DeepEqual(s.e, e) }

func (s *sender) close() { close(s.done) }

func (s *sender) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-s.queue:
			s.deliver(ctx, m)
		}
	}
}

// deliver sends m, trying again after a failure with a doubling wait.
func (s *sender) deliver(ctx context.Context, m message) {
	body, err := s.body(m)
	if err != nil {
		s.n.log.Error("notification not built", "notify", s.e.Name, "err", err)
		return
	}
	wait := s.n.opts.Backoff
	for try := 0; ; try++ {
		err = s.send(ctx, body)
		if err == nil {
			s.n.total.WithLabelValues(s.e.Name, "sent").Inc()
			return
		}
		if try >= s.n.opts.Retries || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait *= 2
	}
	s.n.total.WithLabelValues(s.e.Name, "failed").Inc()
	s.n.log.Warn("notification not sent; check the notify entry's url", "notify", s.e.Name, "type", m.Type, "target", m.Target, "err", err)
}

func (s *sender) body(m message) ([]byte, error) {
	if s.e.Kind == KindSlack {
		return json.Marshal(SlackBody{Text: Text(m.Event, m.HeldBack)})
	}
	return json.Marshal(Body{Type: m.Type, Target: m.Target, At: m.At.UTC(), Detail: m.Detail, HeldBack: m.HeldBack})
}

// Text is the one-line message of a slack notification.
func Text(ev Event, heldBack int) string {
	s := "hooxrelay: " + ev.Type
	if ev.Target != "" {
		s += " on target " + ev.Target
	}
	if ev.Detail != "" {
		s += ": " + ev.Detail
	}
	if heldBack > 0 {
		s += fmt.Sprintf(" (and %d more held back)", heldBack)
	}
	return s
}

func (s *sender) send(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.e.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hooxrelay")
	if s.e.Kind == KindWebhook {
		now := time.Now()
		id := "ntf_" + rand.Text()
		req.Header.Set("Webhook-Id", id)
		req.Header.Set("Webhook-Timestamp", strconv.FormatInt(now.Unix(), 10))
		if sig := s.signer.Sign(id, now, body); sig != "" {
			req.Header.Set("Webhook-Signature", sig)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}
