package credithttp_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/credithttp"
	"github.com/creditkit/credits/memstore"
)

// refused checks that rep is a problem with status, code and field, and
// that no account changed while do ran.
func (f *fixture) refused(t *testing.T, what string, status int, code, field string, do func() reply) {
	t.Helper()
	before := map[string]string{}
	for _, a := range []string{"alice", "bob", "team"} {
		before[a] = f.snapshot(a)
	}
	rep := do()
	if rep.status != status {
		t.Errorf("%s: %d %s, want %d %s", what, rep.status, rep.body, status, code)
		return
	}
	if p := rep.problem(t); p.Code != code || p.Field != field {
		t.Errorf("%s: code %q field %q, want %q %q: %s", what, p.Code, p.Field, code, field, rep.body)
	}
	for _, a := range []string{"alice", "bob", "team"} {
		if f.snapshot(a) != before[a] {
			t.Errorf("%s: account %s changed", what, a)
		}
	}
}

// A worker that reports that a job used nothing, or asks to charge 0,
// must not be charged the whole quote (what the ledger does for a capture
// that says nothing): it is refused, and the hold stays open to release.
func TestReviewCaptureOfNothingIsNotTheWholeQuote(t *testing.T) {
	f := newFixture(t, nil)
	h := f.reserve("job-1")
	for _, tt := range []struct{ body, field, code string }{
		{`{"amount":"0"}`, "amount", "invalid_amount"},
		{`{"amount":0}`, "amount", "invalid_amount"},
		{`{"usage":{"duration_ms":0}}`, "usage", "invalid_request"},
		{`{"usage":{}}`, "usage", "invalid_request"},
		{`{"usage":{"images":0},"amount":"0"}`, "amount", "invalid_amount"},
	} {
		f.refused(t, tt.body, 400, tt.code, tt.field, func() reply {
			return f.do(request{method: "POST", path: "/accounts/alice/holds/" + h + "/capture", user: "alice", role: "settle", body: tt.body})
		})
	}
	// Saying nothing still charges the quote, and an amount with a zero
	// usage charges the amount.
	rep := f.do(request{method: "POST", path: "/accounts/alice/holds/" + h + "/capture", user: "alice", role: "settle", body: `{"usage":{"duration_ms":0},"amount":"12"}`})
	if rep.status != 200 || !strings.Contains(string(rep.body), `"charged":"12"`) {
		t.Errorf("capture of an amount: %d %s", rep.status, rep.body)
	}
	h2 := f.reserve("job-2")
	rep = f.do(request{method: "POST", path: "/accounts/alice/jobs/job-2/capture", user: "alice", role: "settle", body: `{"usage":null}`})
	if rep.status != 200 || !strings.Contains(string(rep.body), `"charged":"40"`) {
		t.Errorf("capture as quoted of %s: %d %s", h2, rep.status, rep.body)
	}
}

// failingStore fails every read and write, when told to, as a database
// that went away does: a transient error carrying the driver's text.
type failingStore struct {
	credits.Store
	fail atomic.Bool
}

var errDriver = errors.New(`pq: could not connect to 10.0.0.7:5432 (SELECT secret_column FROM credits_accounts)`)

func (s *failingStore) err() error {
	return fmt.Errorf("sqlstore: load: %w: %w", credits.ErrTransient, errDriver)
}

func (s *failingStore) View(ctx context.Context, q credits.Query) (*credits.State, error) {
	if s.fail.Load() {
		return nil, s.err()
	}
	return s.Store.View(ctx, q)
}

func (s *failingStore) Update(ctx context.Context, q credits.Query, apply func(*credits.State) (*credits.Change, error)) error {
	if s.fail.Load() {
		return s.err()
	}
	return s.Store.Update(ctx, q, apply)
}

// A 5xx problem says what to do, never the store's own error text.
func TestReviewServerErrorsHideTheirCause(t *testing.T) {
	store := &failingStore{Store: memstore.New()}
	f := newFixture(t, store)
	q := f.quote("alice", "alice")
	store.fail.Store(true)
	for _, r := range []request{
		{method: "GET", path: "/accounts/alice/balance", user: "alice"},
		{method: "POST", path: "/accounts/alice/reserve", user: "alice", key: "j1", body: `{"quote":"` + q + `"}`},
	} {
		rep := f.do(r)
		p := rep.problem(t)
		if rep.status != 503 || p.Code != "transient" {
			t.Errorf("%s: %d %s", r.path, rep.status, rep.body)
		}
		if strings.Contains(p.Detail, "pq:") || strings.Contains(p.Detail, "SELECT") || strings.Contains(p.Detail, "10.0.0.7") {
			t.Errorf("%s: the detail shows the store's error: %s", r.path, rep.body)
		}
	}
}

// Body keys match their field exactly and appear once: encoding/json alone
// takes "Tool" or "ttl_mſ" (Unicode folding) for a field and keeps the last
// of duplicate keys, so that what another reader of the body sees differs
// from what is decided.
func TestReviewBodyKeysAreExact(t *testing.T) {
	f := newFixture(t, nil)
	q := f.quote("alice", "alice")
	h := f.reserve("job-1")
	tests := []struct {
		name, path, role, key, body, field string
	}{
		{"capitalised", "/accounts/alice/quote", "", "", `{"Tool":"video","resolution":"720p","duration_ms":5000}`, "Tool"},
		{"folded", "/accounts/alice/quote", "", "", `{"tool":"video","resolution":"720p","duration_mſ":5000}`, "duration_mſ"},
		{"kelvin", "/accounts/alice/quote", "", "", `{"tool":"video","resolution":"720p","duration_ms":5000,"\u212aey":1}`, "\u212aey"},
		{"duplicate", "/accounts/alice/quote", "", "", `{"tool":"image","tool":"video","resolution":"720p","duration_ms":5000}`, "tool"},
		{"escaped duplicate", "/accounts/alice/quote", "", "", `{"tool":"video","resolution":"720p","duration_ms":5000,"\u0074ool":"image"}`, "tool"},
		{"member twice", "/accounts/team/reserve", "", "r1", `{"quote":"` + q + `","member":"alice","member":"bob"}`, "member"},
		{"Member", "/accounts/alice/reserve", "", "r2", `{"quote":"` + q + `","Member":"x"}`, "Member"},
		{"metadata twice", "/accounts/alice/reserve", "", "r3", `{"quote":"` + q + `","metadata":{"job":"a","job":"b"}}`, "metadata.job"},
		{"nested", "/accounts/alice/holds/" + h + "/capture", "settle", "", `{"usage":{"Duration_ms":1000}}`, "usage.Duration_ms"},
		{"nested twice", "/accounts/alice/holds/" + h + "/capture", "settle", "", `{"usage":{"duration_ms":1000,"duration_ms":5000}}`, "usage.duration_ms"},
		{"member limit twice", "/accounts/team/member-limits", "admin", "l1", `{"period":"day","members":{"bob":"1","bob":"50"}}`, "members.bob"},
		{"amount twice", "/accounts/alice/grants", "admin", "g1", `{"amount":"1","kind":"promo","amount":"1000"}`, "amount"},
	}
	for _, tt := range tests {
		method := "POST"
		if strings.HasSuffix(tt.path, "member-limits") {
			method = "PUT"
		}
		f.refused(t, tt.name, 400, "invalid_request", tt.field, func() reply {
			return f.do(request{method: method, path: tt.path, user: "alice", role: tt.role, key: tt.key, body: tt.body})
		})
	}
	// An escaped key that is the field's name is the field's name.
	if rep := f.do(request{method: "POST", path: "/accounts/alice/quote", user: "alice", body: `{"\u0074ool":"video","resolution":"720p","duration_ms":5000}`}); rep.status != 200 {
		t.Errorf("escaped key: %d %s", rep.status, rep.body)
	}
}

// A member's limit of null is refused, not read as 0 (which forbids the
// member to spend anything).
func TestReviewNullMemberLimit(t *testing.T) {
	f := newFixture(t, nil)
	f.refused(t, "null limit", 400, "invalid_amount", "members.bob", func() reply {
		return f.do(request{method: "PUT", path: "/accounts/team/member-limits", user: "alice", role: "admin", key: "l1", body: `{"period":"day","members":{"bob":null}}`})
	})
	// Of several bad limits, the problem names the same one every time.
	for range 20 {
		rep := f.do(request{method: "PUT", path: "/accounts/team/member-limits", user: "alice", role: "admin", key: "l2", body: `{"period":"day","members":{"bob":"x","alice":"y"}}`})
		if p := rep.problem(t); p.Field != "members.alice" {
			t.Fatalf("bad limits: %s", rep.body)
		}
	}
}

// A debit from an unknown grant names the field.
func TestReviewDebitUnknownGrantField(t *testing.T) {
	f := newFixture(t, nil)
	bobs := f.grantOf("bob")
	f.refused(t, "bob's grant", 404, "unknown_grant", "grant", func() reply {
		return f.do(request{method: "POST", path: "/accounts/alice/debits", user: "alice", role: "admin", key: "d1", body: `{"amount":"1","grant":"` + bobs + `","reason":"x"}`})
	})
}

// The events of an account whose ID holds '#' resume after Last-Event-ID,
// which ends with the last '#' and the sequence.
func TestReviewEventIDOfAccountWithHash(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const acct = "acme#1"
	if _, err := f.ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: acct}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := f.ledger.Grant(ctx, credits.GrantRequest{Account: acct, Amount: credits.Whole(1), Kind: credits.KindPromo, Key: fmt.Sprint("g", i)}); err != nil {
			t.Fatal(err)
		}
	}
	a, err := f.ledger.Account(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/api/accounts/"+url.PathEscape(acct)+"/events", nil)
	req.Header.Set("X-User", acct)
	req.Header.Set("Last-Event-ID", credits.EventID(acct, a.Seq-1))
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("events after %s: %d %s", credits.EventID(acct, a.Seq-1), resp.StatusCode, b)
	}
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if id, ok := strings.CutPrefix(strings.TrimSpace(line), "id: "); ok {
			if id != credits.EventID(acct, a.Seq) {
				t.Fatalf("first event %q, want %q", id, credits.EventID(acct, a.Seq))
			}
			return
		}
	}
}

// handlerFor is the API of f's ledger with an authorizer that grants the
// path's account, mounted with http.StripPrefix alone (as with a router
// that does not clean paths).
func handlerFor(t *testing.T, f *fixture) http.Handler {
	h, err := credithttp.New(credithttp.Config{Ledger: f.ledger, Authorize: func(r *http.Request) (credithttp.Principal, error) {
		return credithttp.Principal{Account: r.PathValue("account")}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return http.StripPrefix("/api", h)
}

// An account ID with a line break cannot be an SSE event ID (the stream's
// framing would break): its stream is refused, not corrupted.
func TestReviewEventsOfAccountWithLineBreak(t *testing.T) {
	f := newFixture(t, nil)
	const acct = "evil\ndata: {}\n"
	if _, err := f.ledger.CreateAccount(context.Background(), credits.CreateAccountRequest{ID: acct}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r := httptest.NewRequestWithContext(ctx, "GET", "/api/accounts/"+url.PathEscape(acct)+"/events", nil)
	w := httptest.NewRecorder()
	handlerFor(t, f).ServeHTTP(w, r)
	if w.Code != 400 || strings.Contains(w.Body.String(), "data: {}") {
		t.Errorf("events of %q: %d %q", acct, w.Code, w.Body)
	}
}

// A path that is not clean is not redirected: behind http.StripPrefix the
// redirect's Location would leave the API (it lacks the prefix), and it
// would not be a problem document.
func TestReviewUncleanPathsAreNotRedirected(t *testing.T) {
	f := newFixture(t, nil)
	h := handlerFor(t, f)
	before := f.snapshot("alice")
	for _, tt := range []struct{ method, path string }{
		{"GET", "/api/accounts//alice/balance"},
		{"GET", "/api/accounts/alice/./balance"},
		{"GET", "/api/accounts/bob/../alice/balance"},
		{"POST", "/api/accounts/x/../alice/holds/h/release"},
		{"GET", "/api"},
	} {
		r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(`{}`))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		rep := reply{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
		if rep.status != 404 || rep.header.Get("Location") != "" || rep.problem(t).Code != "not_found" {
			t.Errorf("%s %s: %d Location %q %s", tt.method, tt.path, rep.status, rep.header.Get("Location"), rep.body)
		}
	}
	// An encoded slash is part of a segment, not a separator: still routed.
	r := httptest.NewRequest("GET", "/api/accounts/alice%2F..%2Fbob/balance", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 404 || !strings.Contains(w.Body.String(), "unknown_account") {
		t.Errorf("encoded slashes: %d %s", w.Code, w.Body)
	}
	if f.snapshot("alice") != before {
		t.Error("a refused request wrote")
	}
}

type brokenBody struct{}

func (brokenBody) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// A body that cannot be read (the client went away mid-body) is the
// client's fault: 400, not an internal error.
func TestReviewUnreadableBody(t *testing.T) {
	f := newFixture(t, nil)
	r := httptest.NewRequest("POST", "/api/accounts/alice/quote", brokenBody{})
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	handlerFor(t, f).ServeHTTP(w, r)
	rep := reply{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	if p := rep.problem(t); rep.status != 400 || p.Field != "body" {
		t.Errorf("unreadable body: %d %s", rep.status, rep.body)
	}
}

// HEAD on the events stream answers its headers and ends: a stream
// whose writes the server drops (a HEAD has no body) would never see a
// failed write and would poll forever.
func TestReviewHeadEventsEnds(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends a stream that did start, once the test has failed
	r := httptest.NewRequestWithContext(ctx, "HEAD", "/api/accounts/alice/events", nil)
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		handlerFor(t, f).ServeHTTP(w, r)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("HEAD /events did not end")
	}
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/event-stream" {
		t.Errorf("HEAD /events: %d %v", w.Code, w.Header())
	}
	// A GET-only path allows HEAD too.
	rep := f.do(request{method: "DELETE", path: "/accounts/alice/events", user: "alice"})
	if rep.status != 405 || rep.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("DELETE /events: %d Allow %q", rep.status, rep.header.Get("Allow"))
	}
}
