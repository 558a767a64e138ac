package credithttp

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/creditkit/credits"
)

// events streams the account's entries as server-sent events, oldest
// first, each once per connection: "id: <account>#<seq>", "event: <entry
// type>", "data: <entry JSON>". It starts after the Last-Event-ID a
// reconnecting EventSource sends, else after ?after=<seq>, else after the
// account's latest entry (only what happens from now on). It looks for new
// entries every EventsPoll, and at once when [Handler.Notify] names the
// account (as every write of this handler does). It asks the Authorizer again before sending
// each batch of entries and at least every EventsKeepAlive (when it also
// sends a comment), and ends the stream once refused, sending nothing
// more. At most MaxStreams are open at once.
func (h *Handler) events(ctx context.Context, c *call) (response, error) {
	q := newQuery(c.r, "after")
	after := q.int64("after")
	_, given := q.v["after"]
	if q.err != nil {
		return response{}, q.err
	}
	// An event ID is "<account>#<seq>" (credits.EventID); an account ID may
	// itself hold '#', so the sequence is after the last one. One that
	// holds a line break cannot be an SSE id (the line would end there),
	// nor be in a comment.
	if strings.ContainsAny(c.account, "\r\n\x00") {
		return response{}, &httpError{code: "invalid_request", status: http.StatusBadRequest, field: "account",
			detail: "account: an ID with a line break cannot be streamed as server-sent events; read its history"}
	}
	if id := c.r.Header.Get("Last-Event-ID"); id != "" {
		i := strings.LastIndexByte(id, '#')
		ok := i >= 0
		acct, seq := id, ""
		if ok {
			acct, seq = id[:i], id[i+1:]
		}
		n, err := strconv.ParseInt(seq, 10, 64)
		if !ok || acct != c.account || err != nil || n < 0 {
			return response{}, badField("Last-Event-ID", "is not an event ID of this account")
		}
		after, given = n, true
	}
	if !given {
		a, err := h.cfg.Ledger.Account(ctx, c.account)
		if err != nil {
			return response{}, err
		}
		after = a.Seq
	} else if _, err := h.cfg.Ledger.Account(ctx, c.account); err != nil {
		return response{}, err
	}

	select {
	case h.streams <- struct{}{}:
		defer func() { <-h.streams }()
	default:
		return response{}, &httpError{code: "too_many_streams", status: http.StatusServiceUnavailable,
			detail: "too many event streams are open: poll the history, or retry later"}
	}

	hd := c.w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	// HEAD (which the GET pattern takes) has no body: the server drops
	// what a stream writes, so no write ever fails and a stream would poll
	// until the process ends, holding the connection (a kept-alive
	// client's next request on it never gets an answer).
	if c.r.Method == http.MethodHead {
		c.w.WriteHeader(http.StatusOK)
		return response{}, nil
	}
	rc := http.NewResponseController(c.w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's WriteTimeout
	c.w.WriteHeader(http.StatusOK)
	if _, err := c.w.Write([]byte("retry: 2000\n: stream of " + c.account + "\n\n")); err != nil {
		return response{}, nil
	}
	if err := rc.Flush(); err != nil {
		h.cfg.Logger.ErrorContext(ctx, "credithttp: events need a ResponseWriter that flushes", "err", err)
		return response{}, nil
	}

	poll := time.NewTicker(h.cfg.EventsPoll)
	defer poll.Stop()
	woken, unsubscribe := h.subscribe(c.account)
	defer unsubscribe()
	idle, checked := time.Now(), time.Now()
	buf := make([]byte, 0, 1024)
	for {
		page, err := h.cfg.Ledger.History(ctx, credits.HistoryRequest{Account: c.account, After: after, Limit: 100})
		if ctx.Err() != nil {
			return response{}, nil
		}
		if err != nil { // the stream has begun: say so in a comment and let the client reconnect
			h.cfg.Logger.ErrorContext(ctx, "credithttp: events stream failed", "account", c.account, "err", err)
			c.w.Write([]byte(": error, reconnect\n\n"))
			return response{}, nil
		}
		// Access is asked again before each batch of entries is sent, and
		// at least every keep-alive: a member removed from a team receives
		// nothing of the team's written after the removal, and an idle
		// stream of theirs ends.
		if len(page.Entries) > 0 || time.Since(checked) >= h.cfg.EventsKeepAlive {
			if _, err := h.authorize(c, member); err != nil {
				c.w.Write([]byte(": access revoked\n\n"))
				return response{}, nil
			}
			checked = time.Now()
		}
		buf = buf[:0]
		for _, e := range page.Entries {
			data, err := json.Marshal(e)
			if err != nil {
				return response{}, nil
			}
			buf = append(buf, "id: "...)
			buf = append(buf, credits.EventID(e.Account, e.Seq)...)
			buf = append(buf, "\nevent: "...)
			buf = append(buf, e.Type...)
			buf = append(buf, "\ndata: "...)
			buf = append(buf, data...)
			buf = append(buf, "\n\n"...)
			after = e.Seq
		}
		if len(buf) == 0 && time.Since(idle) >= h.cfg.EventsKeepAlive {
			buf = append(buf, ": keep-alive\n\n"...)
		}
		if len(buf) > 0 {
			if _, err := c.w.Write(buf); err != nil {
				return response{}, nil
			}
			if err := rc.Flush(); err != nil {
				return response{}, nil
			}
			idle = time.Now()
		}
		if page.Next != 0 {
			continue // more waiting
		}
		select {
		case <-ctx.Done():
			return response{}, nil
		case <-poll.C:
		case <-woken:
		}
	}
}
