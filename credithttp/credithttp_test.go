package credithttp_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/credithttp"
	"github.com/creditkit/credits/memstore"
	"github.com/creditkit/credits/sqlstore"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// fixture is a ledger with three accounts behind a test server: alice and
// bob (personal, 100 signup credits each, alice also 20 purchased) and
// team (members alice and bob, 200 credits). Requests say who they are
// with X-User and what they may do with X-Role ("settle", "admin").
type fixture struct {
	t      *testing.T
	ledger *credits.Ledger
	api    *credithttp.Handler
	srv    *httptest.Server
}

func newFixture(t *testing.T, store credits.Store, configure ...func(*credithttp.Config)) *fixture {
	t.Helper()
	if store == nil {
		store = memstore.New()
	}
	ctx := context.Background()
	ledger, err := credits.NewLedger(store, &credits.Config{
		Now:      func() time.Time { return t0 },
		QuoteKey: []byte("credithttp test key, 32 bytes or more"),
		Signup:   credits.Reward{Amount: credits.Whole(100)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []credits.CreateAccountRequest{{ID: "alice"}, {ID: "bob"}, {ID: "team", Team: true, Members: []string{"alice", "bob"}}} {
		if _, err := ledger.CreateAccount(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []credits.GrantRequest{
		{Account: "alice", Amount: credits.Whole(20), Kind: credits.KindPurchase, Key: "buy-1"},
		{Account: "team", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "buy-1"},
	} {
		if _, err := ledger.Grant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	cfg := credithttp.Config{Ledger: ledger, Authorize: authorize, EventsPoll: 5 * time.Millisecond}
	for _, c := range configure {
		c(&cfg)
	}
	h, err := credithttp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", http.StripPrefix("/api", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{t: t, ledger: ledger, api: h, srv: srv}
}

// authorize is the test application's authorizer: a user acts on their
// own account and on the team's, as a member.
func authorize(r *http.Request) (credithttp.Principal, error) {
	user := r.Header.Get("X-User")
	if user == "" {
		return credithttp.Principal{}, credithttp.ErrUnauthenticated
	}
	role := r.Header.Get("X-Role")
	p := credithttp.Principal{Settle: role == "settle", Admin: role == "admin"}
	switch acct := r.PathValue("account"); {
	case acct == "": // the catalog
		return p, nil
	case acct == user:
		p.Account = acct
	case acct == "team" && (user == "alice" || user == "bob"):
		p.Account, p.Member = acct, user
	case role == "liar": // an authorizer that grants the wrong account
		p.Account = user
	default:
		return credithttp.Principal{}, credithttp.ErrForbidden
	}
	return p, nil
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// problem decodes a problem document, failing the test if it is not one.
func (r reply) problem(t *testing.T) credithttp.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d, Content-Type %q, want a problem: %s", r.status, ct, r.body)
	}
	var p credithttp.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem: %v: %s", err, r.body)
	}
	if p.Status != r.status || p.Code == "" || p.Title == "" || !strings.HasSuffix(p.Type, "/"+p.Code) {
		t.Fatalf("malformed problem for status %d: %s", r.status, r.body)
	}
	return p
}

type request struct {
	method, path string
	user, role   string
	key          string
	body         string
	header       map[string]string
}

func (f *fixture) do(req request) reply {
	f.t.Helper()
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	r, err := http.NewRequest(req.method, f.srv.URL+"/api"+req.path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if req.body != "" || req.method == "POST" || req.method == "PUT" {
		r.Header.Set("Content-Type", "application/json")
	}
	if req.user != "" {
		r.Header.Set("X-User", req.user)
	}
	if req.role != "" {
		r.Header.Set("X-Role", req.role)
	}
	if req.key != "" {
		r.Header.Set("Idempotency-Key", req.key)
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(r)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// snapshot is everything the ledger keeps about an account that a request
// could change: the account and its whole history.
func (f *fixture) snapshot(account string) string {
	f.t.Helper()
	ctx := context.Background()
	a, err := f.ledger.Account(ctx, account)
	if err != nil {
		f.t.Fatal(err)
	}
	h, err := f.ledger.History(ctx, credits.HistoryRequest{Account: account, Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	b, _ := json.Marshal([]any{a, h})
	return string(b)
}

// quote asks the API for a sealed quote of a 5 s 720p video (40 credits).
func (f *fixture) quote(account, user string) string {
	f.t.Helper()
	return f.quoteOf(account, user, `{"tool":"video","resolution":"720p","duration_ms":5000}`)
}

// quoteOf asks the API to quote body and returns the sealed quote.
func (f *fixture) quoteOf(account, user, body string) string {
	f.t.Helper()
	r := f.do(request{method: "POST", path: "/accounts/" + account + "/quote", user: user, body: body})
	if r.status != 200 {
		f.t.Fatalf("quote: %d %s", r.status, r.body)
	}
	var q credithttp.QuoteResponse
	if err := json.Unmarshal(r.body, &q); err != nil {
		f.t.Fatal(err)
	}
	return q.Sealed
}

// reserve reserves a 40-credit hold on alice's account and returns its ID.
func (f *fixture) reserve(key string) string {
	f.t.Helper()
	r := f.do(request{method: "POST", path: "/accounts/alice/reserve", user: "alice", key: key, body: `{"quote":"` + f.quote("alice", "alice") + `"}`})
	if r.status != 201 {
		f.t.Fatalf("reserve: %d %s", r.status, r.body)
	}
	var res credits.ReserveResult
	if err := json.Unmarshal(r.body, &res); err != nil {
		f.t.Fatal(err)
	}
	return res.Hold.ID
}

func (f *fixture) capture(hold string) {
	f.t.Helper()
	if _, err := f.ledger.Capture(context.Background(), credits.CaptureRequest{Hold: hold}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) grantID() string {
	f.t.Helper()
	page, err := f.ledger.Grants(context.Background(), credits.GrantsRequest{Account: "alice"})
	if err != nil || len(page.Grants) == 0 {
		f.t.Fatalf("grants: %v %v", page, err)
	}
	return page.Grants[0].ID
}

func (f *fixture) grantOf(account string) string {
	f.t.Helper()
	page, err := f.ledger.Grants(context.Background(), credits.GrantsRequest{Account: account})
	if err != nil || len(page.Grants) == 0 {
		f.t.Fatalf("grants: %v %v", page, err)
	}
	return page.Grants[0].ID
}

// newPostgres opens a store in a schema of its own on the test database
// (CREDITS_TEST_POSTGRES), dropped at the end; without one the test skips,
// except under CI=true, where it fails.
func newPostgres(t *testing.T) credits.Store {
	dsn := os.Getenv("CREDITS_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CREDITS_TEST_POSTGRES is not set: the PostgreSQL tests must run in CI")
		}
		t.Skip("CREDITS_TEST_POSTGRES is not set: skipping the PostgreSQL test")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "credithttp_test_" + hex.EncodeToString(b[:])
	s, err := sqlstore.Open(context.Background(), dsn, &sqlstore.Options{Schema: schema})
	if err != nil {
		t.Fatalf("open PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		_, _ = s.DB().ExecContext(context.Background(), `DROP SCHEMA "`+schema+`" CASCADE`)
		_ = s.Close()
	})
	return s
}
