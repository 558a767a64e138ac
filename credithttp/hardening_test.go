package credithttp_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/credithttp"
)

// A POST without Content-Type: application/json is refused, body or not:
// a browser sends that header cross-site only after a CORS preflight, so a
// cookie-authenticated API cannot be driven by another site's form or
// no-cors fetch. Here, a settle-capable session's release with no body.
func TestPostNeedsJSONContentType(t *testing.T) {
	f := newFixture(t, nil)
	hold := f.reserve("job-1")
	before := f.snapshot("alice")
	for _, ct := range []string{"", "text/plain", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"} {
		r, _ := http.NewRequest("POST", f.srv.URL+"/api/accounts/alice/holds/"+hold+"/release", nil)
		r.Header.Set("X-User", "alice")
		r.Header.Set("X-Role", "settle")
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		resp, err := f.srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		rep := reply{status: resp.StatusCode, header: resp.Header, body: b}
		if p := rep.problem(t); rep.status != 415 || p.Field != "Content-Type" {
			t.Errorf("Content-Type %q: %d %s", ct, rep.status, b)
		}
	}
	if f.snapshot("alice") != before {
		t.Error("a refused release wrote")
	}
}

// An end user may not release their hold (the job would run for free),
// nor capture it; a worker's credentials (Settle) may.
func TestReleaseNeedsSettle(t *testing.T) {
	f := newFixture(t, nil)
	hold := f.reserve("job-1")
	rep := f.do(request{method: "POST", path: "/accounts/alice/holds/" + hold + "/release", user: "alice", body: `{"reason":"mine now"}`})
	if p := rep.problem(t); rep.status != 403 || p.Code != "forbidden" {
		t.Fatalf("user release: %d %s", rep.status, rep.body)
	}
	rep = f.do(request{method: "POST", path: "/accounts/alice/holds/" + hold + "/release", user: "alice", role: "settle", body: `{"reason":"failed"}`})
	if rep.status != 200 {
		t.Fatalf("worker release: %d %s", rep.status, rep.body)
	}
}

func TestAuthChallenge(t *testing.T) {
	f := newFixture(t, nil, func(c *credithttp.Config) { c.AuthChallenge = `Bearer realm="credits"` })
	rep := f.do(request{method: "GET", path: "/accounts/alice/balance"})
	if rep.status != 401 || rep.header.Get("WWW-Authenticate") != `Bearer realm="credits"` {
		t.Errorf("401 without its challenge: %d %v", rep.status, rep.header)
	}
	if rep := f.do(request{method: "GET", path: "/accounts/bob/balance", user: "alice"}); rep.header.Get("WWW-Authenticate") != "" {
		t.Error("a 403 carries a challenge")
	}
}

// openStream opens alice's events stream and returns its body.
func (f *fixture) openStream(ctx context.Context, t *testing.T, user string) (*http.Response, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/api/accounts/team/events", nil)
	req.Header.Set("X-User", user)
	return f.srv.Client().Do(req)
}

func TestMaxStreams(t *testing.T) {
	f := newFixture(t, nil, func(c *credithttp.Config) { c.MaxStreams = 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, err := f.openStream(ctx, t, "alice")
	if err != nil || first.StatusCode != 200 {
		t.Fatalf("first stream: %v %v", first, err)
	}
	rep := f.do(request{method: "GET", path: "/accounts/team/events", user: "bob"})
	if p := rep.problem(t); rep.status != 503 || p.Code != "too_many_streams" {
		t.Fatalf("second stream: %d %s", rep.status, rep.body)
	}
	first.Body.Close()
	// The slot frees once the handler sees the client gone (its next poll).
	deadline := time.Now().Add(5 * time.Second)
	for {
		c2, cancel2 := context.WithCancel(ctx)
		resp, err := f.openStream(c2, t, "bob")
		if err == nil && resp.StatusCode == 200 {
			cancel2()
			resp.Body.Close()
			break
		}
		if err == nil {
			resp.Body.Close()
		}
		cancel2()
		if time.Now().After(deadline) {
			t.Fatalf("the slot never freed: %v %v", resp, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A stream asks the authorizer again every keep-alive: a member removed
// from the team stops receiving its events.
func TestStreamEndsWhenAccessIsRevoked(t *testing.T) {
	var revoked atomic.Bool
	f := newFixture(t, nil, func(c *credithttp.Config) {
		c.EventsKeepAlive = 20 * time.Millisecond
		c.Authorize = func(r *http.Request) (credithttp.Principal, error) {
			if revoked.Load() {
				return credithttp.Principal{}, credithttp.ErrForbidden
			}
			return authorize(r)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := f.openStream(ctx, t, "bob")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	revoked.Store(true)
	// Written after the revocation: never sent to bob.
	if _, err := f.ledger.Grant(ctx, credits.GrantRequest{Account: "team", Amount: credits.Whole(1), Kind: credits.KindPromo, Key: "after-revoke", Note: "written after bob lost access"}); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body) // ends when the handler ends the stream
	if err != nil {
		t.Fatalf("the stream did not end: %v", err)
	}
	if !strings.Contains(string(b), ": access revoked") {
		t.Errorf("stream ended without saying why: %q", b)
	}
	if strings.Contains(string(b), "after bob lost access") || strings.Contains(string(b), "event:") {
		t.Errorf("an entry went out after the revocation: %q", b)
	}
}

// A stream shows a write at once, not at its next poll: the handler's own
// writes wake it, and Notify wakes it for writes made elsewhere.
func TestEventsWakeOnWrites(t *testing.T) {
	f := newFixture(t, nil, func(c *credithttp.Config) { c.EventsPoll = time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/api/accounts/alice/events", nil)
	req.Header.Set("X-User", "alice")
	resp, err := f.srv.Client().Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				lines <- string(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	waitFor := func(what, typ string) {
		t.Helper()
		timeout := time.After(3 * time.Second) // the poll is an hour away
		for {
			select {
			case s, ok := <-lines:
				if !ok {
					t.Fatalf("%s: the stream ended", what)
				}
				if strings.Contains(s, "event: "+typ+"\n") {
					return
				}
			case <-timeout:
				t.Fatalf("%s: no %s event without a poll", what, typ)
			}
		}
	}
	f.reserve("job-1") // through the handler
	waitFor("a reserve through the API", "hold")
	if _, err := f.ledger.Grant(ctx, credits.GrantRequest{Account: "alice", Amount: credits.Whole(1), Kind: credits.KindPromo, Key: "elsewhere"}); err != nil {
		t.Fatal(err)
	}
	f.api.Notify("alice")
	waitFor("a grant made elsewhere, then Notify", "grant")
}
