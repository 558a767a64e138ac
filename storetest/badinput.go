package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/creditkit/credits"
)

// runBadInput checks that bad input gets a clear error and writes nothing.
//
// "Refused" runs a table of bad requests against every public Ledger
// operation on one fresh store, most of them each on an account of its own.
// For each one it asserts the sentinel error (errors.Is, never a message),
// compares a snapshot of every account involved — the projected balance,
// the whole history, and the stored state: account row, live buckets, every
// hold the history names, and the idempotency record of the request's key —
// taken before and after, checks that a valid request under the same
// idempotency key still works (the key was not consumed) and that the
// invariants hold. Business refusals decided
// against the account's state (a settled hold, a refund beyond the charge,
// not a member, insufficient credits) are, by design, recorded under the
// caller's key so that a retry fails the same way: for those the snapshot
// must be unchanged except for that record, the retry must fail again with
// nothing more written, and a different request under the key must be an
// idempotency conflict.
//
// "StoredVerbatim" stores SQL metacharacters, injection strings and unusual
// Unicode in every string field a caller (or the catalog, or the ID
// generator) controls and reads each one back byte for byte, while a second
// account's data stays untouched.
func runBadInput(t *testing.T, newStore NewStore) {
	t.Run("Refused", func(t *testing.T) { runRefused(t, newStore) })
	t.Run("StoredVerbatim", func(t *testing.T) { runStoredVerbatim(t, newStore) })
}

// badStrings are strings no request field accepts: each is refused with
// ErrInvalidRequest wherever it appears.
var badStrings = []struct{ name, s string }{
	{"invalid UTF-8", "ab\xff"},
	{"truncated UTF-8", "ab\xe2\x82"},
	{"UTF-8 surrogate", "a\xed\xa0\x80"},
	{"overlong UTF-8", "a\xc0\xaf"},
	{"NUL", "a\x00b"},
	{"escape", "a\x1b[31m"},
	{"DEL", "a\x7f"},
	{"C1 control", "a\u0085b"},
	{"U+FFFD", "a\ufffdb"},
}

// sized returns a string of exactly n bytes that ends with tag (unique
// strings for unique keys and IDs).
func sized(n int, tag string) string {
	if len(tag) >= n {
		return tag[:n]
	}
	return strings.Repeat("x", n-len(tag)) + tag
}

// meta returns metadata of n entries, each key and value of the given sizes.
func meta(n, keyLen, valLen int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[sized(keyLen, fmt.Sprint("k", i))] = sized(valLen, fmt.Sprint("v", i))
	}
	return m
}

// badCase is one bad request.
type badCase struct {
	op, name string
	inputs   int // bad inputs tried (0 means 1)
	want     error
	// recorded: the refusal is a business outcome recorded under the
	// caller's key (see runBadInput).
	recorded bool
	// build prepares what the case needs (a fresh hold, a fresh key) before
	// the first snapshot and returns the calls to make.
	build func() badRun
	// check, when set, replaces the snapshot comparison.
	check func(t *testing.T, before, after snapshot)
}

type badRun struct {
	call func() error
	// then is a valid request made afterwards: it must succeed (or, after a
	// recorded refusal, be an idempotency conflict). Nil: none.
	then func() error
	// account is the account the request names, snapshotted around the
	// call (one that does not exist must still not exist); key is the
	// caller's idempotency key on it, whose record is snapshotted too.
	account, key string
	// extra are other accounts the request names: one that does not
	// exist must still not exist afterwards.
	extra []string
}

// variant is a valid request made bad by mod. fix, when set, first turns
// the valid request into the one at the limit (a key of exactly
// MaxKeyLength bytes…), which is what then makes. A variant with set
// instead of mod tries each of badStrings in one field (set puts it there),
// one request after the other, between the same two snapshots.
type variant[R any] struct {
	name     string
	mod      func(*R)
	set      func(r *R, s string)
	fix      func(*R)
	want     error
	recorded bool
}

// badText is the variant that puts each of badStrings in one text field.
func badText[R any](name string, set func(r *R, s string)) variant[R] {
	return variant[R]{name: name + " (invalid UTF-8, controls)", set: set, want: credits.ErrInvalidRequest}
}

// expand turns variants of one operation into cases: base makes a fresh
// valid request (and whatever it needs, such as a hold), do makes it, and
// target names the account and key of a request.
func expand[R any](op string, base func() R, do func(R) error, target func(R) (string, string), vs []variant[R]) []badCase {
	out := make([]badCase, 0, len(vs))
	for _, v := range vs {
		c := badCase{op: op, name: v.name, want: v.want, recorded: v.recorded, inputs: 1}
		mods := []func(*R){v.mod}
		if v.set != nil {
			mods = mods[:0]
			for _, b := range badStrings {
				mods = append(mods, func(r *R) { v.set(r, b.s) })
			}
			c.inputs = len(mods)
		}
		c.build = func() badRun {
			good := base()
			if v.fix != nil {
				v.fix(&good)
			}
			bads := make([]R, len(mods))
			for i, mod := range mods {
				bads[i] = good
				mod(&bads[i])
			}
			acct, key := target(good)
			r := badRun{then: func() error { return do(good) }, account: acct, key: key}
			r.call = func() error {
				var err error
				for i, bad := range bads {
					if err = do(bad); !errors.Is(err, v.want) && len(bads) > 1 {
						return fmt.Errorf("%s: %w", badStrings[i].name, err)
					}
				}
				return err
			}
			if other, _ := target(bads[0]); other != acct && storable(other) {
				r.extra = []string{other}
			}
			return r
		}
		out = append(out, c)
	}
	return out
}

// acctSnap is what a case may not change about one account.
type acctSnap struct {
	Exists  bool
	Balance credits.Balance
	History []credits.Entry
	State   *credits.State
}

type snapshot map[string]acctSnap

type badFixture struct {
	t        *testing.T
	h        *Harness
	n        int
	accounts []string // the shared accounts, checked again at the end
	last     string   // the account fresh made last
	bigTeam  string
}

// fresh makes an account of its own for one case, so that histories stay
// short and a case sees no other case's holds. Its signup grant (50
// credits) covers any one case.
func (f *badFixture) fresh(prefix string) string {
	f.t.Helper()
	id := f.key(prefix)
	if _, err := f.h.Ledger.CreateAccount(f.h.Ctx, credits.CreateAccountRequest{ID: id}); err != nil {
		f.t.Fatalf("fixture: create %q: %v", id, err)
	}
	f.last = id
	return id
}

func (f *badFixture) key(prefix string) string {
	f.n++
	return fmt.Sprintf("%s-%d", prefix, f.n)
}

func (f *badFixture) quote(req credits.QuoteRequest) credits.Quote { return f.h.Quote(f.t, req) }

var (
	badImage = credits.QuoteRequest{Tool: "image"}                                                // 7
	badVideo = credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second} // 40
	badHuge  = credits.QuoteRequest{Tool: "video-pro", Resolution: "1080p", Duration: 10 * time.Minute}
)

func (f *badFixture) reserve(acct, member string, req credits.QuoteRequest, ttl time.Duration) credits.Hold {
	f.t.Helper()
	r, err := f.h.Ledger.Reserve(f.h.Ctx, credits.ReserveRequest{Account: acct, Member: member, Quote: f.quote(req), TTL: ttl, Key: f.key("fixture-reserve")})
	if err != nil {
		f.t.Fatalf("fixture: reserve on %q: %v", acct, err)
	}
	return r.Hold
}

func (f *badFixture) open(acct string, req credits.QuoteRequest) credits.Hold {
	return f.reserve(acct, "", req, 0)
}

func (f *badFixture) charge(acct string) credits.Hold {
	f.t.Helper()
	r, err := f.h.Ledger.Charge(f.h.Ctx, credits.ChargeRequest{Account: acct, Quote: f.quote(badImage), Key: f.key("fixture-charge")})
	if err != nil {
		f.t.Fatalf("fixture: charge: %v", err)
	}
	return r.Hold
}

func (f *badFixture) captured(acct string) credits.Hold {
	f.t.Helper()
	hd := f.open(acct, badVideo)
	r, err := f.h.Ledger.Capture(f.h.Ctx, credits.CaptureRequest{Hold: hd.ID, Usage: credits.Usage{Duration: 3 * time.Second}, Key: f.key("fixture-capture")})
	if err != nil {
		f.t.Fatalf("fixture: capture: %v", err)
	}
	return r.Hold
}

func (f *badFixture) released(acct string) credits.Hold {
	f.t.Helper()
	hd := f.open(acct, badVideo)
	r, err := f.h.Ledger.Release(f.h.Ctx, credits.ReleaseRequest{Hold: hd.ID, Key: f.key("fixture-release")})
	if err != nil {
		f.t.Fatalf("fixture: release: %v", err)
	}
	return r.Hold
}

func (f *badFixture) refunded(acct string) credits.Hold {
	f.t.Helper()
	hd := f.charge(acct)
	r, err := f.h.Ledger.Refund(f.h.Ctx, credits.RefundRequest{Charge: hd.ID, Key: f.key("fixture-refund")})
	if err != nil {
		f.t.Fatalf("fixture: refund: %v", err)
	}
	return r.Hold
}

// expired makes a hold on acct whose deadline has passed, swept or not.
func (f *badFixture) expired(acct string, swept bool) credits.Hold {
	f.t.Helper()
	hd := f.reserve(acct, "", badVideo, time.Second)
	f.h.Clock.Advance(2 * time.Second)
	if swept {
		if _, err := f.h.Ledger.Sweep(f.h.Ctx); err != nil {
			f.t.Fatalf("fixture: sweep: %v", err)
		}
	}
	return hd
}

func (f *badFixture) history(t *testing.T, account string) []credits.Entry {
	t.Helper()
	return f.h.history(t, account, 1000)
}

func (f *badFixture) snap(t *testing.T, r badRun) snapshot {
	t.Helper()
	var ids []string
	if r.account == "" {
		ids = []string{"a"} // a request that names no account: "a" stands for every one
	}
	for _, id := range append([]string{r.account}, r.extra...) {
		if id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	s := snapshot{}
	for _, id := range ids {
		b, err := f.h.Ledger.Balance(f.h.Ctx, id)
		if errors.Is(err, credits.ErrUnknownAccount) {
			st, err := f.h.Store.View(f.h.Ctx, credits.Query{Account: id})
			if err != nil || st.Account != nil {
				t.Fatalf("View(%q) of an unknown account: %+v, %v", id, st, err)
			}
			s[id] = acctSnap{}
			continue
		}
		if err != nil {
			t.Fatalf("Balance(%q): %v", id, err)
		}
		q := credits.Query{Account: id}
		if id == r.account && r.key != "" {
			q.Keys = []string{"k:" + r.key}
		}
		st, err := f.h.Store.View(f.h.Ctx, q)
		if err != nil || st.Account == nil {
			t.Fatalf("View(%q): %+v, %v", id, st, err)
		}
		// The whole history, asked in one call of the length the row says
		// (a store may return less: then ask for the rest). An entry
		// written past the row's Seq is caught by CheckInvariants.
		var es []credits.Entry
		for int64(len(es)) < st.Account.Seq {
			var after int64
			if len(es) > 0 {
				after = es[len(es)-1].Seq
			}
			more, err := f.h.Store.Entries(f.h.Ctx, credits.EntryFilter{Account: id, AfterSeq: after, Limit: int(st.Account.Seq) - len(es)})
			if err != nil || len(more) == 0 {
				t.Fatalf("Entries(%q) after %d: %d entries, %v; the row says %d", id, after, len(more), err, st.Account.Seq)
			}
			es = append(es, more...)
		}
		// Every hold the history names, whatever its status.
		var holds []string
		for _, e := range es {
			if e.Hold != "" && !slices.Contains(holds, e.Hold) {
				holds = append(holds, e.Hold)
			}
		}
		if len(holds) > 0 {
			hs, err := f.h.Store.View(f.h.Ctx, credits.Query{Account: id, Holds: holds})
			if err != nil {
				t.Fatalf("View(%q) of holds: %v", id, err)
			}
			st.Holds = hs.Holds
		}
		s[id] = acctSnap{Exists: true, Balance: b, History: es, State: st}
	}
	return s
}

var snapOpts = cmp.Options{cmpopts.EquateEmpty()}

// diffSnap returns the differences between two snapshots, or "". It tries
// reflect.DeepEqual first: cmp is thorough but slow on long histories.
func diffSnap(before, after any) string {
	if reflect.DeepEqual(before, after) {
		return ""
	}
	return cmp.Diff(before, after, snapOpts)
}

// withoutRecords drops the loaded idempotency records, for comparing the
// state around a refusal that is recorded by design.
func withoutRecords(s snapshot) snapshot {
	out := snapshot{}
	for id, a := range s {
		if a.State != nil {
			st := *a.State
			st.Records = nil
			a.State = &st
		}
		out[id] = a
	}
	return out
}

// storable reports whether s passes the ledger's rules for an ID
// ([credits.CheckID]), so that the suite may ask a store about it.
func storable(s string) bool { return credits.CheckID(s) == nil }

func (f *badFixture) run(t *testing.T, c badCase) {
	parent := f.t
	f.t = t // the fixture's helpers fail the case, not the whole table
	defer func() { f.t = parent }()
	r := c.build()
	before := f.snap(t, r)
	err := r.call()
	if !errors.Is(err, c.want) {
		t.Fatalf("got error %v, want %v", err, c.want)
	}
	after := f.snap(t, r)
	switch {
	case c.check != nil:
		c.check(t, before, after)
	case c.recorded:
		if diff := diffSnap(withoutRecords(before), withoutRecords(after)); diff != "" {
			t.Fatalf("a refusal wrote more than its record (-before +after):\n%s", diff)
		}
	default:
		if diff := diffSnap(before, after); diff != "" {
			t.Fatalf("bad input wrote (-before +after):\n%s", diff)
		}
	}
	if c.recorded {
		if r.key == "" {
			t.Fatalf("a recorded refusal needs a key")
		}
		if after[r.account].State.Records["k:"+r.key] == nil {
			t.Fatalf("the refusal is not recorded under key %q", r.key)
		}
		if err := r.call(); !errors.Is(err, c.want) {
			t.Fatalf("retry: got error %v, want %v again", err, c.want)
		}
		if diff := diffSnap(after, f.snap(t, r)); diff != "" {
			t.Fatalf("a retried refusal wrote (-first +retry):\n%s", diff)
		}
	}
	if r.then != nil {
		err := r.then()
		switch {
		case c.recorded && !errors.Is(err, credits.ErrIdempotencyConflict):
			t.Fatalf("a different request under the recorded key %q: got %v, want ErrIdempotencyConflict", r.key, err)
		case !c.recorded && err != nil:
			t.Fatalf("a valid request afterwards (key %q): %v", r.key, err)
		}
	}
	for _, id := range append([]string{r.account}, r.extra...) {
		if id == "" {
			continue
		}
		if _, err := f.h.Ledger.Balance(f.h.Ctx, id); err == nil {
			CheckInvariants(t, f.h, id)
		}
	}
}

// lazyExpiryOnly is the check for a refusal recorded on an account with a
// hold past its deadline that no sweep has stored as expired yet: the
// refusal is recorded together with the expiries that fell due (dated at
// their deadlines), and nothing else changes: the projected balance is the
// same.
func lazyExpiryOnly(account string) func(t *testing.T, before, after snapshot) {
	return func(t *testing.T, before, after snapshot) {
		t.Helper()
		for id := range before {
			if id == account {
				continue
			}
			if diff := diffSnap(before[id], after[id]); diff != "" {
				t.Fatalf("account %q changed (-before +after):\n%s", id, diff)
			}
		}
		b, a := before[account], after[account]
		if diff := cmp.Diff(b.Balance, a.Balance); diff != "" {
			t.Fatalf("balance changed (-before +after):\n%s", diff)
		}
		if len(a.History) <= len(b.History) {
			t.Fatalf("the due expiry was not stored with the refusal")
		}
		if diff := cmp.Diff(b.History, a.History[:len(b.History)]); diff != "" {
			t.Fatalf("history rewritten (-before +after):\n%s", diff)
		}
		for _, e := range a.History[len(b.History):] {
			if e.Type != credits.EntryHoldExpired || e.At.After(b.Balance.AsOf) {
				t.Fatalf("a refusal wrote %+v", e)
			}
		}
	}
}

func runRefused(t *testing.T, newStore NewStore) {
	start := time.Now()
	h := NewHarness(t, newStore(t), nil)
	funded := []string{"a", "team", "x"}
	f := &badFixture{t: t, h: h, accounts: append(funded, "b", "full")}
	for _, id := range f.accounts {
		req := credits.CreateAccountRequest{ID: id}
		if id == "team" {
			req.Team, req.Members = true, []string{"m1", "m2"}
		}
		h.Account(t, req)
	}
	for _, id := range funded {
		grant(t, h, id, whole(100_000), credits.KindPurchase, time.Time{}, "fund")
	}
	grant(t, h, "b", whole(1000), credits.KindPurchase, time.Time{}, "fund") // less than badHuge
	// "full" has been granted every credit a Credits value can count.
	grant(t, h, "full", credits.FromUnits(credits.MaxUnits-whole(50).Units()), credits.KindPurchase, time.Time{}, "fund")
	f.bigTeam = "bigteam"
	bigMembers := make([]string, 10_000)
	for i := range bigMembers {
		bigMembers[i] = fmt.Sprintf("m%05d", i)
	}
	h.Account(t, credits.CreateAccountRequest{ID: f.bigTeam, Team: true, Members: bigMembers})

	cases := badCaseTable(f)
	counts, inputs := map[string]int{}, map[string]int{}
	var order []string
	total := 0
	for _, c := range cases {
		if counts[c.op] == 0 {
			order = append(order, c.op)
		}
		counts[c.op]++
		inputs[c.op] += max(c.inputs, 1)
		total += max(c.inputs, 1)
		t.Run(c.op+"/"+c.name, func(t *testing.T) { f.run(t, c) })
	}
	for _, id := range f.accounts {
		CheckInvariants(t, h, id)
	}
	var lines []string
	for _, op := range order {
		lines = append(lines, fmt.Sprintf("%s %d (%d cases)", op, inputs[op], counts[op]))
	}
	t.Logf("%d bad inputs in %d cases, %s: %s", total, len(cases), time.Since(start).Round(time.Millisecond), strings.Join(lines, ", "))
}

// badCaseTable is every bad request, by operation.
func badCaseTable(f *badFixture) []badCase {
	h, L := f.h, f.h.Ledger
	ctx := h.Ctx
	var cases []badCase
	add := func(cs ...badCase) { cases = append(cases, cs...) }
	one := func(op, name string, want error, build func() badRun) badCase {
		return badCase{op: op, name: name, want: want, build: build}
	}

	// ---- CreateAccount ----
	create := func(r credits.CreateAccountRequest) error { _, err := L.CreateAccount(ctx, r); return err }
	createTarget := func(r credits.CreateAccountRequest) (string, string) { return r.ID, "" }
	newAcct := func() credits.CreateAccountRequest { return credits.CreateAccountRequest{ID: f.key("new")} }
	newTeam := func() credits.CreateAccountRequest {
		return credits.CreateAccountRequest{ID: f.key("newteam"), Team: true, Members: []string{"m1"}}
	}
	cv := []variant[credits.CreateAccountRequest]{
		{name: "empty ID", mod: func(r *credits.CreateAccountRequest) { r.ID = "" }, want: credits.ErrInvalidRequest},
		{name: "ID over 128 bytes", mod: func(r *credits.CreateAccountRequest) { r.ID = sized(credits.MaxIDLength+1, r.ID) },
			fix: func(r *credits.CreateAccountRequest) { r.ID = sized(credits.MaxIDLength, r.ID) }, want: credits.ErrInvalidRequest},
		{name: "members on a personal account", mod: func(r *credits.CreateAccountRequest) { r.Members = []string{"m1"} }, want: credits.ErrInvalidRequest},
		{name: "negative threshold", mod: func(r *credits.CreateAccountRequest) { r.LowBalanceThreshold = credits.FromUnits(-1) }, want: credits.ErrInvalidAmount},
		{name: "threshold MinInt64", mod: func(r *credits.CreateAccountRequest) { r.LowBalanceThreshold = credits.FromUnits(math.MinInt64) }, want: credits.ErrInvalidAmount},
	}
	cv = append(cv, badText("ID", func(r *credits.CreateAccountRequest, s string) { r.ID = s }))
	cv = append(cv, metaVariants(func(r *credits.CreateAccountRequest) *map[string]string { return &r.Metadata })...)
	add(expand("CreateAccount", newAcct, create, createTarget, cv)...)
	tv := []variant[credits.CreateAccountRequest]{
		{name: "empty member", mod: func(r *credits.CreateAccountRequest) { r.Members = []string{"m1", ""} }, want: credits.ErrInvalidRequest},
		{name: "member over 128 bytes", mod: func(r *credits.CreateAccountRequest) { r.Members = []string{sized(credits.MaxIDLength+1, "m")} },
			fix: func(r *credits.CreateAccountRequest) { r.Members = []string{sized(credits.MaxIDLength, "m")} }, want: credits.ErrInvalidRequest},
		{name: "10001 members", mod: func(r *credits.CreateAccountRequest) { r.Members = numbered("m", 10_001) }, want: credits.ErrInvalidRequest},
	}
	tv = append(tv, badText("member", func(r *credits.CreateAccountRequest, s string) { r.Members = []string{"m1", s} }))
	add(expand("CreateAccount", newTeam, create, createTarget, tv)...)
	add(badCase{op: "CreateAccount", name: "existing ID, different request", want: credits.ErrAccountExists, build: func() badRun {
		return badRun{call: func() error { return create(credits.CreateAccountRequest{ID: "a", Team: true}) }, account: "a",
			then: func() error { return create(credits.CreateAccountRequest{ID: "a"}) }} // the same request is replayed
	}})

	// ---- UpdateMembers ----
	members := func(r credits.MembersRequest) error { _, err := L.UpdateMembers(ctx, r); return err }
	membersTarget := func(r credits.MembersRequest) (string, string) { return r.Account, "" }
	mv := []variant[credits.MembersRequest]{
		{name: "not a team", mod: func(r *credits.MembersRequest) { r.Account = "a" }, want: credits.ErrInvalidRequest},
		{name: "empty member added", mod: func(r *credits.MembersRequest) { r.Add = []string{""} }, want: credits.ErrInvalidRequest},
		{name: "empty member removed", mod: func(r *credits.MembersRequest) { r.Remove = []string{""} }, want: credits.ErrInvalidRequest},
		{name: "member over 128 bytes", mod: func(r *credits.MembersRequest) { r.Add = []string{sized(credits.MaxIDLength+1, "m")} },
			fix: func(r *credits.MembersRequest) { r.Add = []string{sized(credits.MaxIDLength, "m")} }, want: credits.ErrInvalidRequest},
		{name: "10001 members added", mod: func(r *credits.MembersRequest) { r.Add = numbered("n", 10_001) }, want: credits.ErrInvalidRequest},
		{name: "10001 members removed", mod: func(r *credits.MembersRequest) { r.Remove = numbered("n", 10_001) }, want: credits.ErrInvalidRequest},
	}
	mv = append(mv,
		badText("added member", func(r *credits.MembersRequest, s string) { r.Add = []string{"m3", s} }),
		badText("removed member", func(r *credits.MembersRequest, s string) { r.Remove = []string{s} }))
	mv = append(mv, accountVariants(func(r *credits.MembersRequest) *string { return &r.Account })...)
	add(expand("UpdateMembers", func() credits.MembersRequest { return credits.MembersRequest{Account: "team", Add: []string{"m3"}} }, members, membersTarget, mv)...)
	add(one("UpdateMembers", "team over 10000 members", credits.ErrInvalidRequest, func() badRun {
		return badRun{account: f.bigTeam,
			call: func() error {
				return members(credits.MembersRequest{Account: f.bigTeam, Add: []string{"one-too-many"}})
			},
			then: func() error { return members(credits.MembersRequest{Account: f.bigTeam, Add: []string{"m00000"}}) }}
	}))

	// ---- Grant ----
	grantDo := func(r credits.GrantRequest) error { _, err := L.Grant(ctx, r); return err }
	grantTarget := func(r credits.GrantRequest) (string, string) { return r.Account, r.Key }
	newGrant := func() credits.GrantRequest {
		return credits.GrantRequest{Account: f.fresh("grant"), Amount: c1, Kind: credits.KindPromo, Key: f.key("grant"), Note: "n"}
	}
	gv := []variant[credits.GrantRequest]{
		{name: "zero amount", mod: func(r *credits.GrantRequest) { r.Amount = credits.Credits{} }, want: credits.ErrInvalidAmount},
		{name: "negative amount", mod: func(r *credits.GrantRequest) { r.Amount = credits.FromUnits(-1) }, want: credits.ErrInvalidAmount},
		{name: "amount MinInt64", mod: func(r *credits.GrantRequest) { r.Amount = credits.FromUnits(math.MinInt64) }, want: credits.ErrInvalidAmount},
		{name: "overflowing amount", mod: func(r *credits.GrantRequest) { r.Amount = credits.FromUnits(credits.MaxUnits) }, want: credits.ErrOverflow},
		{name: "unknown kind", mod: func(r *credits.GrantRequest) { r.Kind = "gift" }, want: credits.ErrInvalidRequest},
		{name: "empty kind", mod: func(r *credits.GrantRequest) { r.Kind = "" }, want: credits.ErrInvalidRequest},
		{name: "kind with SQL", mod: func(r *credits.GrantRequest) { r.Kind = "promo'; --" }, want: credits.ErrInvalidRequest},
		{name: "purchase that expires", mod: func(r *credits.GrantRequest) {
			r.Kind, r.ExpiresAt = credits.KindPurchase, h.Clock.Now().Add(time.Hour)
		}, want: credits.ErrInvalidRequest},
		{name: "expires now", mod: func(r *credits.GrantRequest) { r.ExpiresAt = h.Clock.Now() }, want: credits.ErrInvalidRequest},
		{name: "expired", mod: func(r *credits.GrantRequest) { r.ExpiresAt = h.Clock.Now().Add(-time.Nanosecond) }, want: credits.ErrInvalidRequest},
		{name: "expires in year 1", mod: func(r *credits.GrantRequest) { r.ExpiresAt = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC) }, want: credits.ErrInvalidRequest},
		{name: "expires after 2200", mod: func(r *credits.GrantRequest) { r.ExpiresAt = time.Date(2201, 1, 1, 0, 0, 0, 0, time.UTC) }, want: credits.ErrInvalidRequest},
		{name: "expires in year 9999", mod: func(r *credits.GrantRequest) { r.ExpiresAt = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC) }, want: credits.ErrInvalidRequest},
	}
	gv = append(gv, keyVariants(func(r *credits.GrantRequest) *string { return &r.Key }, true)...)
	gv = append(gv, noteVariants(func(r *credits.GrantRequest) *string { return &r.Note })...)
	gv = append(gv, accountVariants(func(r *credits.GrantRequest) *string { return &r.Account })...)
	add(expand("Grant", newGrant, grantDo, grantTarget, gv)...)
	add(one("Grant", "overflowing the account's total", credits.ErrOverflow, func() badRun {
		return badRun{account: "full", key: "over",
			call: func() error {
				return grantDo(credits.GrantRequest{Account: "full", Amount: credits.FromUnits(1), Kind: credits.KindPurchase, Key: "over"})
			}}
	}))
	add(one("Grant", "unknown account, created afterwards", credits.ErrUnknownAccount, func() badRun {
		id, k := f.key("later"), f.key("grant")
		r := credits.GrantRequest{Account: id, Amount: c1, Kind: credits.KindPromo, Key: k}
		return badRun{account: id, call: func() error { return grantDo(r) }, then: func() error {
			if err := create(credits.CreateAccountRequest{ID: id}); err != nil {
				return err
			}
			return grantDo(r)
		}}
	}))
	add(one("Grant", "key reused with another amount", credits.ErrIdempotencyConflict, func() badRun {
		r := newGrant()
		if err := grantDo(r); err != nil {
			f.t.Fatal(err)
		}
		bad := r
		bad.Amount = c3
		return badRun{account: r.Account, key: r.Key, call: func() error { return grantDo(bad) }, then: func() error { return grantDo(r) }}
	}))
	add(one("Grant", "key of a reserve", credits.ErrIdempotencyConflict, func() badRun {
		r := newGrant()
		k := f.key("reserve")
		if _, err := L.Reserve(ctx, credits.ReserveRequest{Account: r.Account, Quote: f.quote(badImage), Key: k}); err != nil {
			f.t.Fatal(err)
		}
		r.Key = k
		return badRun{account: r.Account, key: k, call: func() error { return grantDo(r) }}
	}))

	// ---- ClaimDaily ----
	daily := func(acct string) error { _, err := L.ClaimDaily(ctx, acct); return err }
	dv := accountVariants(func(r *string) *string { return r })
	add(expand("ClaimDaily", func() string { return "b" }, daily, func(a string) (string, string) { return a, "" }, dv)...)
	add(one("ClaimDaily", "overflowing the account's total", credits.ErrOverflow, func() badRun {
		return badRun{account: "full", call: func() error { return daily("full") }}
	}))
	add(one("ClaimDaily", "no daily reward configured", credits.ErrDailyUnavailable, func() badRun {
		off := NewHarness(f.t, h.Store, func(c *credits.Config) { c.Daily = credits.Reward{}; c.Now = h.Clock.Now })
		return badRun{account: "a", call: func() error { _, err := off.Ledger.ClaimDaily(ctx, "a"); return err },
			then: func() error { return daily("a") }}
	}))

	// ---- Reserve and Charge ----
	reserveDo := func(r credits.ReserveRequest) error { _, err := L.Reserve(ctx, r); return err }
	reserveTarget := func(r credits.ReserveRequest) (string, string) { return r.Account, r.Key }
	newReserve := func() credits.ReserveRequest {
		return credits.ReserveRequest{Account: f.fresh("reserve"), Quote: f.quote(badImage), Key: f.key("reserve"), Metadata: map[string]string{"job": "1"}}
	}
	rv := quoteVariants(f, func(r *credits.ReserveRequest) *credits.Quote { return &r.Quote })
	rv = append(rv,
		variant[credits.ReserveRequest]{name: "negative TTL", mod: func(r *credits.ReserveRequest) { r.TTL = -time.Nanosecond }, want: credits.ErrInvalidRequest},
		variant[credits.ReserveRequest]{name: "TTL MinInt64", mod: func(r *credits.ReserveRequest) { r.TTL = math.MinInt64 }, want: credits.ErrInvalidRequest},
		variant[credits.ReserveRequest]{name: "TTL above the maximum", mod: func(r *credits.ReserveRequest) { r.TTL = 7*24*time.Hour + time.Nanosecond },
			fix: func(r *credits.ReserveRequest) { r.TTL = 7 * 24 * time.Hour }, want: credits.ErrInvalidRequest},
		variant[credits.ReserveRequest]{name: "TTL MaxInt64", mod: func(r *credits.ReserveRequest) { r.TTL = math.MaxInt64 }, want: credits.ErrInvalidRequest},
		variant[credits.ReserveRequest]{name: "insufficient credits", mod: func(r *credits.ReserveRequest) { r.Quote = f.quote(badHuge); r.Account = "b" },
			fix: func(r *credits.ReserveRequest) { r.Account = "b" }, want: credits.ErrInsufficientCredits, recorded: true},
	)
	rv = append(rv, keyVariants(func(r *credits.ReserveRequest) *string { return &r.Key }, true)...)
	rv = append(rv, memberVariants(func(r *credits.ReserveRequest) *string { return &r.Member })...)
	rv = append(rv, metaVariants(func(r *credits.ReserveRequest) *map[string]string { return &r.Metadata })...)
	rv = append(rv, accountVariants(func(r *credits.ReserveRequest) *string { return &r.Account })...)
	add(expand("Reserve", newReserve, reserveDo, reserveTarget, rv)...)
	newTeamReserve := func() credits.ReserveRequest {
		return credits.ReserveRequest{Account: "team", Member: "m1", Quote: f.quote(badImage), Key: f.key("reserve")}
	}
	add(expand("Reserve", newTeamReserve, reserveDo, reserveTarget, teamVariants(func(r *credits.ReserveRequest) *string { return &r.Member }))...)
	add(one("Reserve", "key reused with another quote", credits.ErrIdempotencyConflict, func() badRun {
		r := newReserve()
		if err := reserveDo(r); err != nil {
			f.t.Fatal(err)
		}
		bad := r
		bad.Quote = f.quote(badVideo)
		return badRun{account: r.Account, key: r.Key, call: func() error { return reserveDo(bad) }, then: func() error { return reserveDo(r) }}
	}))

	chargeDo := func(r credits.ChargeRequest) error { _, err := L.Charge(ctx, r); return err }
	chargeTarget := func(r credits.ChargeRequest) (string, string) { return r.Account, r.Key }
	newCharge := func() credits.ChargeRequest {
		return credits.ChargeRequest{Account: f.fresh("charge"), Quote: f.quote(badImage), Key: f.key("charge"), Metadata: map[string]string{"job": "1"}}
	}
	chv := quoteVariants(f, func(r *credits.ChargeRequest) *credits.Quote { return &r.Quote })
	chv = append(chv, variant[credits.ChargeRequest]{name: "insufficient credits", mod: func(r *credits.ChargeRequest) { r.Quote = f.quote(badHuge); r.Account = "b" },
		fix: func(r *credits.ChargeRequest) { r.Account = "b" }, want: credits.ErrInsufficientCredits, recorded: true})
	chv = append(chv, keyVariants(func(r *credits.ChargeRequest) *string { return &r.Key }, true)...)
	chv = append(chv, memberVariants(func(r *credits.ChargeRequest) *string { return &r.Member })...)
	chv = append(chv, metaVariants(func(r *credits.ChargeRequest) *map[string]string { return &r.Metadata })...)
	chv = append(chv, accountVariants(func(r *credits.ChargeRequest) *string { return &r.Account })...)
	add(expand("Charge", newCharge, chargeDo, chargeTarget, chv)...)
	newTeamCharge := func() credits.ChargeRequest {
		return credits.ChargeRequest{Account: "team", Member: "m1", Quote: f.quote(badImage), Key: f.key("charge")}
	}
	add(expand("Charge", newTeamCharge, chargeDo, chargeTarget, teamVariants(func(r *credits.ChargeRequest) *string { return &r.Member }))...)
	add(one("Charge", "key of a grant", credits.ErrIdempotencyConflict, func() badRun {
		acct := f.fresh("charge")
		grant(f.t, h, acct, c1, credits.KindPromo, time.Time{}, "fund")
		return badRun{account: acct, key: "fund", call: func() error {
			return chargeDo(credits.ChargeRequest{Account: acct, Quote: f.quote(badImage), Key: "fund"})
		}}
	}))

	// ---- Capture ----
	captureDo := func(r credits.CaptureRequest) error { _, err := L.Capture(ctx, r); return err }
	// The account a request on a hold names, or the one its hold belongs to.
	holdAccount := func(named string) string {
		if named != "" {
			return named
		}
		return f.last
	}
	captureTarget := func(r credits.CaptureRequest) (string, string) { return holdAccount(r.Account), r.Key }
	newCapture := func() credits.CaptureRequest {
		return credits.CaptureRequest{Hold: f.open(f.fresh("capture"), badVideo).ID, Key: f.key("capture"), Usage: credits.Usage{Duration: 4 * time.Second}}
	}
	newImageCapture := func() credits.CaptureRequest {
		return credits.CaptureRequest{Hold: f.open(f.fresh("capture"), badImage).ID, Key: f.key("capture"), Usage: credits.Usage{Images: 1}}
	}
	capv := []variant[credits.CaptureRequest]{
		{name: "negative amount", mod: func(r *credits.CaptureRequest) { r.Amount = credits.FromUnits(-1) }, want: credits.ErrInvalidAmount},
		{name: "amount MinInt64", mod: func(r *credits.CaptureRequest) { r.Amount = credits.FromUnits(math.MinInt64) }, want: credits.ErrInvalidAmount},
		{name: "amount above the hold", mod: func(r *credits.CaptureRequest) { r.Amount = credits.FromUnits(whole(40).Units() + 1) },
			fix: func(r *credits.CaptureRequest) { r.Amount, r.Usage = whole(40), credits.Usage{} }, want: credits.ErrExceedsHold},
		{name: "amount MaxInt64", mod: func(r *credits.CaptureRequest) { r.Amount = credits.FromUnits(credits.MaxUnits) }, want: credits.ErrExceedsHold},
		{name: "negative duration", mod: func(r *credits.CaptureRequest) { r.Usage.Duration = -time.Nanosecond }, want: credits.ErrInvalidRequest},
		{name: "duration MinInt64", mod: func(r *credits.CaptureRequest) { r.Usage.Duration = math.MinInt64 }, want: credits.ErrInvalidRequest},
		{name: "images on a video hold", mod: func(r *credits.CaptureRequest) { r.Usage = credits.Usage{Images: 1} }, want: credits.ErrInvalidRequest},
		{name: "huge image count on a video hold", mod: func(r *credits.CaptureRequest) { r.Usage = credits.Usage{Images: math.MaxInt} }, want: credits.ErrInvalidRequest},
		{name: "images and duration", mod: func(r *credits.CaptureRequest) { r.Usage.Images = 1 }, want: credits.ErrInvalidRequest},
		{name: "negative images", mod: func(r *credits.CaptureRequest) { r.Usage = credits.Usage{Images: -1} }, want: credits.ErrInvalidRequest},
		{name: "images MinInt", mod: func(r *credits.CaptureRequest) { r.Usage = credits.Usage{Images: math.MinInt} }, want: credits.ErrInvalidRequest},
	}
	capv = append(capv, keyVariants(func(r *credits.CaptureRequest) *string { return &r.Key }, false)...)
	capv = append(capv, holdVariants(func(r *credits.CaptureRequest) (*string, *string) { return &r.Hold, &r.Account })...)
	add(expand("Capture", newCapture, captureDo, captureTarget, capv)...)
	icv := []variant[credits.CaptureRequest]{
		{name: "duration on an image hold", mod: func(r *credits.CaptureRequest) { r.Usage = credits.Usage{Duration: time.Second} }, want: credits.ErrInvalidRequest},
		{name: "duration MaxInt64 on an image hold", mod: func(r *credits.CaptureRequest) { r.Usage = credits.Usage{Duration: math.MaxInt64} }, want: credits.ErrInvalidRequest},
		{name: "negative images on an image hold", mod: func(r *credits.CaptureRequest) { r.Usage = credits.Usage{Images: -1} }, want: credits.ErrInvalidRequest},
		{name: "negative duration on an image hold", mod: func(r *credits.CaptureRequest) { r.Usage = credits.Usage{Duration: -time.Second} }, want: credits.ErrInvalidRequest},
	}
	add(expand("Capture", newImageCapture, captureDo, captureTarget, icv)...)

	// ---- Release ----
	releaseDo := func(r credits.ReleaseRequest) error { _, err := L.Release(ctx, r); return err }
	releaseTarget := func(r credits.ReleaseRequest) (string, string) { return holdAccount(r.Account), r.Key }
	newRelease := func() credits.ReleaseRequest {
		return credits.ReleaseRequest{Hold: f.open(f.fresh("release"), badVideo).ID, Key: f.key("release"), Reason: "job failed"}
	}
	relv := keyVariants(func(r *credits.ReleaseRequest) *string { return &r.Key }, false)
	relv = append(relv, noteVariants(func(r *credits.ReleaseRequest) *string { return &r.Reason })...)
	relv = append(relv, holdVariants(func(r *credits.ReleaseRequest) (*string, *string) { return &r.Hold, &r.Account })...)
	add(expand("Release", newRelease, releaseDo, releaseTarget, relv)...)

	// ---- Extend ----
	extendDo := func(r credits.ExtendRequest) error { _, err := L.Extend(ctx, r); return err }
	extendTarget := func(r credits.ExtendRequest) (string, string) { return holdAccount(r.Account), "" }
	newExtend := func() credits.ExtendRequest {
		return credits.ExtendRequest{Hold: f.open(f.fresh("extend"), badVideo).ID, TTL: 2 * time.Hour}
	}
	extv := []variant[credits.ExtendRequest]{
		{name: "negative TTL", mod: func(r *credits.ExtendRequest) { r.TTL = -time.Second }, want: credits.ErrInvalidRequest},
		{name: "TTL MinInt64", mod: func(r *credits.ExtendRequest) { r.TTL = math.MinInt64 }, want: credits.ErrInvalidRequest},
		{name: "TTL over MaxHoldTTL", mod: func(r *credits.ExtendRequest) { r.TTL = 7*24*time.Hour + 1 }, want: credits.ErrInvalidRequest},
		{name: "TTL MaxInt64", mod: func(r *credits.ExtendRequest) { r.TTL = math.MaxInt64 }, want: credits.ErrInvalidRequest},
	}
	extv = append(extv, holdVariants(func(r *credits.ExtendRequest) (*string, *string) { return &r.Hold, &r.Account })...)
	add(expand("Extend", newExtend, extendDo, extendTarget, extv)...)

	// ---- Debit ----
	debitDo := func(r credits.DebitRequest) error { _, err := L.Debit(ctx, r); return err }
	debitTarget := func(r credits.DebitRequest) (string, string) { return r.Account, r.Key }
	newDebit := func() credits.DebitRequest {
		return credits.DebitRequest{Account: f.fresh("debit"), Amount: c1, Reason: "chargeback", Key: f.key("debit")}
	}
	debv := []variant[credits.DebitRequest]{
		{name: "zero amount", mod: func(r *credits.DebitRequest) { r.Amount = credits.Credits{} }, want: credits.ErrInvalidAmount},
		{name: "negative amount", mod: func(r *credits.DebitRequest) { r.Amount = credits.FromUnits(-1) }, want: credits.ErrInvalidAmount},
		{name: "amount MinInt64", mod: func(r *credits.DebitRequest) { r.Amount = credits.FromUnits(math.MinInt64) }, want: credits.ErrInvalidAmount},
		// Refusals decided against the account: recorded.
		{name: "more than the account has", mod: func(r *credits.DebitRequest) { r.Amount = credits.Whole(51) }, want: credits.ErrInsufficientCredits, recorded: true},
		{name: "amount MaxInt64", mod: func(r *credits.DebitRequest) { r.Amount = credits.FromUnits(credits.MaxUnits) }, want: credits.ErrInsufficientCredits, recorded: true},
		{name: "no credits of the kind", mod: func(r *credits.DebitRequest) { r.Kinds = []credits.GrantKind{credits.KindPurchase} }, want: credits.ErrInsufficientCredits, recorded: true},
		{name: "unknown kind", mod: func(r *credits.DebitRequest) { r.Kinds = []credits.GrantKind{credits.KindPromo, "gift"} }, want: credits.ErrInvalidRequest},
		{name: "empty kind", mod: func(r *credits.DebitRequest) { r.Kinds = []credits.GrantKind{""} }, want: credits.ErrInvalidRequest},
		{name: "grant and kinds", mod: func(r *credits.DebitRequest) { r.Grant, r.Kinds = "grant_x", []credits.GrantKind{credits.KindPromo} }, want: credits.ErrInvalidRequest},
		{name: "empty reason", mod: func(r *credits.DebitRequest) { r.Reason = "" }, want: credits.ErrInvalidRequest},
	}
	debv = append(debv, grantVariants(func(r *credits.DebitRequest) *string { return &r.Grant })...)
	debv = append(debv, keyVariants(func(r *credits.DebitRequest) *string { return &r.Key }, true)...)
	debv = append(debv, noteVariants(func(r *credits.DebitRequest) *string { return &r.Reason })...)
	debv = append(debv, accountVariants(func(r *credits.DebitRequest) *string { return &r.Account })...)
	add(expand("Debit", newDebit, debitDo, debitTarget, debv)...)

	// ---- Annotate ----
	noteDo := func(r credits.NoteRequest) error { _, err := L.Annotate(ctx, r); return err }
	noteTarget := func(r credits.NoteRequest) (string, string) { return r.Account, r.Key }
	newNote := func() credits.NoteRequest {
		return credits.NoteRequest{Account: f.fresh("note"), Note: "card declined", Key: f.key("note")}
	}
	notev := []variant[credits.NoteRequest]{
		{name: "empty note", mod: func(r *credits.NoteRequest) { r.Note = "" }, want: credits.ErrInvalidRequest},
	}
	notev = append(notev, keyVariants(func(r *credits.NoteRequest) *string { return &r.Key }, true)...)
	notev = append(notev, noteVariants(func(r *credits.NoteRequest) *string { return &r.Note })...)
	notev = append(notev, accountVariants(func(r *credits.NoteRequest) *string { return &r.Account })...)
	add(expand("Annotate", newNote, noteDo, noteTarget, notev)...)

	// ---- VoidGrant ----
	voidDo := func(r credits.VoidGrantRequest) error { _, err := L.VoidGrant(ctx, r); return err }
	voidTarget := func(r credits.VoidGrantRequest) (string, string) { return r.Account, r.Key }
	newVoid := func() credits.VoidGrantRequest {
		acct := f.fresh("void")
		g := grant(f.t, h, acct, c1, credits.KindPromo, time.Time{}, f.key("promo"))
		return credits.VoidGrantRequest{Account: acct, Grant: g.Grant.ID, Reason: "promo abuse", Key: f.key("void")}
	}
	vv := []variant[credits.VoidGrantRequest]{
		{name: "empty reason", mod: func(r *credits.VoidGrantRequest) { r.Reason = "" }, want: credits.ErrInvalidRequest},
		{name: "empty grant", mod: func(r *credits.VoidGrantRequest) { r.Grant = "" }, want: credits.ErrInvalidRequest},
	}
	vv = append(vv, grantVariants(func(r *credits.VoidGrantRequest) *string { return &r.Grant })...)
	vv = append(vv, keyVariants(func(r *credits.VoidGrantRequest) *string { return &r.Key }, true)...)
	vv = append(vv, noteVariants(func(r *credits.VoidGrantRequest) *string { return &r.Reason })...)
	vv = append(vv, accountVariants(func(r *credits.VoidGrantRequest) *string { return &r.Account })...)
	add(expand("VoidGrant", newVoid, voidDo, voidTarget, vv)...)
	add(badCase{op: "VoidGrant", name: "voided already", want: credits.ErrGrantVoided, recorded: true, build: func() badRun {
		r := newVoid()
		if _, err := L.VoidGrant(ctx, credits.VoidGrantRequest{Account: r.Account, Grant: r.Grant, Reason: "first", Key: f.key("void")}); err != nil {
			f.t.Fatal(err)
		}
		return badRun{account: r.Account, key: r.Key, call: func() error { return voidDo(r) }}
	}})
	add(one("VoidGrant", "grant of another account", credits.ErrUnknownGrant, func() badRun {
		r := newVoid()
		r.Account = f.fresh("void")
		return badRun{account: r.Account, key: r.Key, call: func() error { return voidDo(r) }}
	}))

	// ---- Refund ----
	refundDo := func(r credits.RefundRequest) error { _, err := L.Refund(ctx, r); return err }
	refundTarget := func(r credits.RefundRequest) (string, string) { return holdAccount(r.Account), r.Key }
	newRefund := func() credits.RefundRequest {
		return credits.RefundRequest{Charge: f.charge(f.fresh("refund")).ID, Key: f.key("refund"), Reason: "bad result"}
	}
	refv := []variant[credits.RefundRequest]{
		{name: "negative amount", mod: func(r *credits.RefundRequest) { r.Amount = credits.FromUnits(-1) }, want: credits.ErrInvalidAmount},
		{name: "amount MinInt64", mod: func(r *credits.RefundRequest) { r.Amount = credits.FromUnits(math.MinInt64) }, want: credits.ErrInvalidAmount},
		{name: "amount above the charge", mod: func(r *credits.RefundRequest) { r.Amount = credits.FromUnits(c7.Units() + 1) },
			fix: func(r *credits.RefundRequest) { r.Amount = c7 }, want: credits.ErrRefundExceedsCharge, recorded: true},
		{name: "amount MaxInt64", mod: func(r *credits.RefundRequest) { r.Amount = credits.FromUnits(credits.MaxUnits) }, want: credits.ErrRefundExceedsCharge, recorded: true},
	}
	refv = append(refv, keyVariants(func(r *credits.RefundRequest) *string { return &r.Key }, true)...)
	refv = append(refv, noteVariants(func(r *credits.RefundRequest) *string { return &r.Reason })...)
	refv = append(refv, holdVariants(func(r *credits.RefundRequest) (*string, *string) { return &r.Charge, &r.Account })...)
	add(expand("Refund", newRefund, refundDo, refundTarget, refv)...)
	add(one("Refund", "key of a grant", credits.ErrIdempotencyConflict, func() badRun {
		ch := f.charge(f.fresh("refund"))
		grant(f.t, h, ch.Account, c1, credits.KindPromo, time.Time{}, "fund")
		return badRun{account: ch.Account, key: "fund", call: func() error { return refundDo(credits.RefundRequest{Charge: ch.ID, Key: "fund"}) }}
	}))

	// ---- Settled, expired and refunded holds ----
	settled := []struct {
		name   string
		hold   func() credits.Hold
		settle error // what Capture and Release say
		refund error // what Refund says (nil: it is refundable)
	}{
		{"captured hold", func() credits.Hold { return f.captured(f.fresh("settled")) }, credits.ErrHoldSettled, nil},
		{"released hold", func() credits.Hold { return f.released(f.fresh("settled")) }, credits.ErrHoldSettled, credits.ErrNotCaptured},
		{"one-step charge", func() credits.Hold { return f.charge(f.fresh("settled")) }, credits.ErrHoldSettled, nil},
		{"refunded charge", func() credits.Hold { return f.refunded(f.fresh("settled")) }, credits.ErrHoldSettled, credits.ErrRefundExceedsCharge},
		{"expired hold (swept)", func() credits.Hold { return f.expired(f.fresh("settled"), true) }, credits.ErrHoldExpired, credits.ErrNotCaptured},
		{"open hold", func() credits.Hold { return f.open(f.fresh("settled"), badVideo) }, nil, credits.ErrNotCaptured},
	}
	for _, s := range settled {
		if s.settle != nil {
			for _, keyed := range []bool{false, true} {
				suffix := ", no key"
				if keyed {
					suffix = ", keyed"
				}
				add(badCase{op: "Capture", name: s.name + suffix, want: s.settle, recorded: keyed, build: func() badRun {
					hd := s.hold()
					r := credits.CaptureRequest{Hold: hd.ID}
					if keyed {
						r.Key = f.key("capture")
					}
					return badRun{account: hd.Account, key: r.Key, call: func() error { return captureDo(r) }, then: func() error {
						if !keyed {
							return nil
						}
						return captureDo(credits.CaptureRequest{Hold: f.open(hd.Account, badImage).ID, Key: r.Key})
					}}
				}})
				if !keyed { // Extend takes no key
					add(badCase{op: "Extend", name: s.name, want: s.settle, build: func() badRun {
						hd := s.hold()
						return badRun{account: hd.Account, call: func() error { return extendDo(credits.ExtendRequest{Hold: hd.ID, TTL: time.Hour}) }}
					}})
				}
				add(badCase{op: "Release", name: s.name + suffix, want: s.settle, recorded: keyed, build: func() badRun {
					hd := s.hold()
					r := credits.ReleaseRequest{Hold: hd.ID, Reason: "again"}
					if keyed {
						r.Key = f.key("release")
					}
					return badRun{account: hd.Account, key: r.Key, call: func() error { return releaseDo(r) }, then: func() error {
						if !keyed {
							return nil
						}
						return releaseDo(credits.ReleaseRequest{Hold: f.open(hd.Account, badImage).ID, Key: r.Key})
					}}
				}})
			}
		}
		if s.refund != nil {
			add(badCase{op: "Refund", name: s.name, want: s.refund, recorded: true, build: func() badRun {
				hd := s.hold()
				r := credits.RefundRequest{Charge: hd.ID, Key: f.key("refund")}
				return badRun{account: hd.Account, key: r.Key, call: func() error { return refundDo(r) },
					then: func() error { return refundDo(credits.RefundRequest{Charge: f.charge(hd.Account).ID, Key: r.Key}) }}
			}})
		}
	}
	add(badCase{op: "Refund", name: "twice, the rest exceeded", want: credits.ErrRefundExceedsCharge, recorded: true, build: func() badRun {
		ch := f.charge(f.fresh("refund"))
		if err := refundDo(credits.RefundRequest{Charge: ch.ID, Amount: c3, Key: f.key("refund")}); err != nil {
			f.t.Fatal(err)
		}
		r := credits.RefundRequest{Charge: ch.ID, Amount: credits.FromUnits(whole(4).Units() + 1), Key: f.key("refund")}
		return badRun{account: ch.Account, key: r.Key, call: func() error { return refundDo(r) },
			then: func() error { return refundDo(credits.RefundRequest{Charge: ch.ID, Amount: whole(4), Key: r.Key}) }}
	}})
	add(badCase{op: "Refund", name: "retried under its key is no second refund", want: nil, build: func() badRun {
		ch := f.charge(f.fresh("refund"))
		r := credits.RefundRequest{Charge: ch.ID, Key: f.key("refund")}
		if err := refundDo(r); err != nil {
			f.t.Fatal(err)
		}
		return badRun{account: ch.Account, key: r.Key, call: func() error {
			res, err := L.Refund(ctx, r)
			if err == nil && !res.Replayed {
				return errors.New("a retried refund was not a replay")
			}
			return err
		}}
	}})
	for _, keyed := range []bool{false, true} {
		// A hold whose deadline passed that no sweep has stored as expired:
		// without a key the refusal writes nothing; with one it is recorded
		// together with the expiry that fell due.
		suffix, check := ", no key", (func(*testing.T, snapshot, snapshot))(nil)
		if keyed {
			suffix, check = ", keyed", lazyExpiryOnly("x")
		}
		for _, op := range []string{"Capture", "Release", "Refund"} {
			want := credits.ErrHoldExpired
			if op == "Refund" {
				want = credits.ErrNotCaptured
				if !keyed {
					continue // a refund always has a key
				}
			}
			add(badCase{op: op, name: "expired hold (unswept)" + suffix, want: want, recorded: keyed, check: check, build: func() badRun {
				hd := f.expired("x", false)
				var k string
				if keyed {
					k = f.key(op)
				}
				call := map[string]func() error{
					"Capture": func() error { return captureDo(credits.CaptureRequest{Hold: hd.ID, Key: k}) },
					"Release": func() error { return releaseDo(credits.ReleaseRequest{Hold: hd.ID, Key: k}) },
					"Refund":  func() error { return refundDo(credits.RefundRequest{Charge: hd.ID, Key: k}) },
				}[op]
				return badRun{account: "x", key: k, call: call}
			}})
		}
	}

	// ---- Usage above the quote: charged the quote, never more ----
	capped := []struct {
		name  string
		req   credits.QuoteRequest
		usage credits.Usage
	}{
		{"1 ns longer than quoted", badVideo, credits.Usage{Duration: 5*time.Second + time.Nanosecond}},
		{"twice as long as quoted", badVideo, credits.Usage{Duration: 10 * time.Second}},
		{"duration MaxInt64", badVideo, credits.Usage{Duration: math.MaxInt64}},
		{"more images than quoted", badImage, credits.Usage{Images: 2}},
		{"images MaxInt", badImage, credits.Usage{Images: math.MaxInt}},
	}
	for _, u := range capped {
		add(badCase{op: "Capture", name: "capped at the quote: " + u.name, check: chargedTheQuote, build: func() badRun {
			hd := f.open(f.fresh("capture"), u.req)
			r := credits.CaptureRequest{Hold: hd.ID, Usage: u.usage, Key: f.key("capture")}
			return badRun{account: hd.Account, key: r.Key, call: func() error {
				res, err := L.Capture(ctx, r)
				if err == nil && (!res.Capped || res.Charged != hd.Amount || res.Charged != hd.Quote.Total) {
					return fmt.Errorf("usage above the quote charged %s (capped %v) for a quote of %s", res.Charged, res.Capped, hd.Quote.Total)
				}
				return err
			}}
		}})
	}
	add(badCase{op: "Run", name: "capped at the quote: job reports duration MaxInt64", check: chargedTheQuote, build: func() badRun {
		r := credits.ReserveRequest{Account: f.fresh("run"), Quote: f.quote(badVideo), Key: f.key("run")}
		return badRun{account: r.Account, key: r.Key, call: func() error {
			res, err := L.Run(ctx, r, func(context.Context, credits.Hold) (credits.Usage, error) {
				return credits.Usage{Duration: math.MaxInt64}, nil
			})
			if err == nil && (!res.Capped || res.Charged != r.Quote.Total) {
				return fmt.Errorf("usage above the quote charged %s (capped %v) for a quote of %s", res.Charged, res.Capped, r.Quote.Total)
			}
			return err
		}}
	}})

	// ---- Run ----
	runWith := func(r credits.ReserveRequest, usage credits.Usage) func() error {
		return func() error {
			ran := false
			_, err := L.Run(ctx, r, func(_ context.Context, _ credits.Hold) (credits.Usage, error) {
				ran = true
				return usage, nil
			})
			if ran && err != nil {
				return fmt.Errorf("the job ran before the request was refused: %v", err)
			}
			return err
		}
	}
	runTarget := func(r credits.ReserveRequest) (string, string) { return r.Account, r.Key }
	runv := []variant[credits.ReserveRequest]{
		{name: "empty key", mod: func(r *credits.ReserveRequest) { r.Key = "" }, want: credits.ErrInvalidRequest},
		{name: "zero quote", mod: func(r *credits.ReserveRequest) { r.Quote = credits.Quote{} }, want: credits.ErrInvalidAmount},
		{name: "forged quote", mod: func(r *credits.ReserveRequest) { r.Quote.Total = c1 }, want: credits.ErrQuoteMismatch},
		{name: "expired quote", mod: func(r *credits.ReserveRequest) { r.Quote.ExpiresAt = h.Clock.Now() }, want: credits.ErrQuoteExpired},
		{name: "negative TTL", mod: func(r *credits.ReserveRequest) { r.TTL = -time.Second }, want: credits.ErrInvalidRequest},
		{name: "unknown account", mod: func(r *credits.ReserveRequest) { r.Account = "nobody" }, want: credits.ErrUnknownAccount},
		{name: "insufficient credits", mod: func(r *credits.ReserveRequest) { r.Quote = f.quote(badHuge); r.Account = "b" },
			fix: func(r *credits.ReserveRequest) { r.Account = "b" }, want: credits.ErrInsufficientCredits, recorded: true},
		{name: "not a member", mod: func(r *credits.ReserveRequest) { r.Account, r.Member = "team", "stranger" },
			fix: func(r *credits.ReserveRequest) { r.Account, r.Member = "team", "m1" }, want: credits.ErrNotMember, recorded: true},
	}
	newRun := func() credits.ReserveRequest {
		return credits.ReserveRequest{Account: f.fresh("run"), Quote: f.quote(badImage), Key: f.key("run")}
	}
	add(expand("Run", newRun, func(r credits.ReserveRequest) error { return runWith(r, credits.Usage{})() }, runTarget, runv)...)
	// A job that reports usage no capture accepts: Run gives the credits
	// back, so the account ends as it began, with the hold and its release
	// in the history.
	badUsage := []struct {
		name  string
		req   credits.QuoteRequest
		usage credits.Usage
	}{
		{"job reports a negative duration", badVideo, credits.Usage{Duration: -time.Second}},
		{"job reports duration MinInt64", badVideo, credits.Usage{Duration: math.MinInt64}},
		{"job reports images for a video", badVideo, credits.Usage{Images: 2}},
		{"job reports negative images", badImage, credits.Usage{Images: -1}},
		{"job reports a duration for an image", badImage, credits.Usage{Duration: time.Second}},
	}
	for _, u := range badUsage {
		add(badCase{op: "Run", name: u.name, want: credits.ErrInvalidRequest, check: releasedByRun, build: func() badRun {
			r := credits.ReserveRequest{Account: f.fresh("run"), Quote: f.quote(u.req), Key: f.key("run")}
			return badRun{account: r.Account, key: r.Key, call: func() error {
				_, err := L.Run(ctx, r, func(context.Context, credits.Hold) (credits.Usage, error) { return u.usage, nil })
				return err
			}}
		}})
	}

	// ---- Reads ----
	balanceDo := func(a string) error { _, err := L.Balance(ctx, a); return err }
	add(expand("Balance", func() string { return "a" }, balanceDo, func(a string) (string, string) { return a, "" }, accountVariants(func(r *string) *string { return r }))...)
	historyDo := func(r credits.HistoryRequest) error { _, err := L.History(ctx, r); return err }
	hv := []variant[credits.HistoryRequest]{
		{name: "negative limit", mod: func(r *credits.HistoryRequest) { r.Limit = -1 }, want: credits.ErrInvalidRequest},
		{name: "limit MinInt", mod: func(r *credits.HistoryRequest) { r.Limit = math.MinInt }, want: credits.ErrInvalidRequest},
		{name: "limit over 1000", mod: func(r *credits.HistoryRequest) { r.Limit = 1001 },
			fix: func(r *credits.HistoryRequest) { r.Limit = 1000 }, want: credits.ErrInvalidRequest},
		{name: "limit MaxInt", mod: func(r *credits.HistoryRequest) { r.Limit = math.MaxInt }, want: credits.ErrInvalidRequest},
		{name: "negative cursor", mod: func(r *credits.HistoryRequest) { r.After = -1 }, want: credits.ErrInvalidRequest},
		{name: "cursor MinInt64", mod: func(r *credits.HistoryRequest) { r.After = math.MinInt64 }, want: credits.ErrInvalidRequest},
	}
	hv = append(hv, accountVariants(func(r *credits.HistoryRequest) *string { return &r.Account })...)
	add(expand("History", func() credits.HistoryRequest { return credits.HistoryRequest{Account: "a"} }, historyDo,
		func(r credits.HistoryRequest) (string, string) { return r.Account, "" }, hv)...)
	spendingDo := func(r credits.SpendingRequest) error { _, err := L.Spending(ctx, r); return err }
	sv := []variant[credits.SpendingRequest]{
		{name: "unknown grouping", mod: func(r *credits.SpendingRequest) { r.By = "week" }, want: credits.ErrInvalidRequest},
		{name: "grouping with SQL", mod: func(r *credits.SpendingRequest) { r.By = "tool; DROP TABLE credits_entries; --" }, want: credits.ErrInvalidRequest},
		{name: "until before since", mod: func(r *credits.SpendingRequest) { r.Since, r.Until = Epoch, Epoch.Add(-time.Nanosecond) }, want: credits.ErrInvalidRequest},
	}
	sv = append(sv, accountVariants(func(r *credits.SpendingRequest) *string { return &r.Account })...)
	add(expand("Spending", func() credits.SpendingRequest { return credits.SpendingRequest{Account: "a", By: credits.ByMember} }, spendingDo,
		func(r credits.SpendingRequest) (string, string) { return r.Account, "" }, sv)...)

	// ---- Quote (pure: it cannot write, but it must refuse) ----
	quoteDo := func(r credits.QuoteRequest) error { _, err := L.Quote(r); return err }
	noTarget := func(credits.QuoteRequest) (string, string) { return "", "" }
	qv := []variant[credits.QuoteRequest]{
		{name: "unknown tool", mod: func(r *credits.QuoteRequest) { r.Tool = "hologram" }, want: credits.ErrUnknownTool},
		{name: "empty tool", mod: func(r *credits.QuoteRequest) { r.Tool = "" }, want: credits.ErrUnknownTool},
		{name: "tool with SQL", mod: func(r *credits.QuoteRequest) { r.Tool = "video'; DROP TABLE credits_accounts; --" }, want: credits.ErrUnknownTool},
		{name: "tool in another case", mod: func(r *credits.QuoteRequest) { r.Tool = "Video" }, want: credits.ErrUnknownTool},
		{name: "tool invalid UTF-8", mod: func(r *credits.QuoteRequest) { r.Tool = "vid\xffeo" }, want: credits.ErrUnknownTool},
		{name: "unknown resolution", mod: func(r *credits.QuoteRequest) { r.Resolution = "8k" }, want: credits.ErrUnknownResolution},
		{name: "resolution with SQL", mod: func(r *credits.QuoteRequest) { r.Resolution = "720p' OR '1'='1" }, want: credits.ErrUnknownResolution},
		{name: "missing resolution", mod: func(r *credits.QuoteRequest) { r.Resolution = "" }, want: credits.ErrInvalidRequest},
		{name: "unknown plan", mod: func(r *credits.QuoteRequest) { r.Plan = "platinum" }, want: credits.ErrUnknownPlan},
		{name: "plan invalid UTF-8", mod: func(r *credits.QuoteRequest) { r.Plan = "pro\xff" }, want: credits.ErrUnknownPlan},
		{name: "zero duration", mod: func(r *credits.QuoteRequest) { r.Duration = 0 }, want: credits.ErrInvalidRequest},
		{name: "negative duration", mod: func(r *credits.QuoteRequest) { r.Duration = -time.Second }, want: credits.ErrInvalidRequest},
		{name: "duration MinInt64", mod: func(r *credits.QuoteRequest) { r.Duration = math.MinInt64 }, want: credits.ErrInvalidRequest},
		{name: "duration above the tool's maximum", mod: func(r *credits.QuoteRequest) { r.Duration = 10*time.Minute + time.Nanosecond },
			fix: func(r *credits.QuoteRequest) { r.Duration = 10 * time.Minute }, want: credits.ErrInvalidRequest},
		{name: "duration MaxInt64", mod: func(r *credits.QuoteRequest) { r.Duration = math.MaxInt64 }, want: credits.ErrInvalidRequest},
		{name: "images on a video tool", mod: func(r *credits.QuoteRequest) { r.Images = 1 }, want: credits.ErrInvalidRequest},
	}
	add(expand("Quote", func() credits.QuoteRequest { return badVideo }, quoteDo, noTarget, qv)...)
	qi := []variant[credits.QuoteRequest]{
		{name: "negative images", mod: func(r *credits.QuoteRequest) { r.Images = -1 }, want: credits.ErrInvalidRequest},
		{name: "images MinInt", mod: func(r *credits.QuoteRequest) { r.Images = math.MinInt }, want: credits.ErrInvalidRequest},
		{name: "images above the tool's maximum", mod: func(r *credits.QuoteRequest) { r.Images = 17 },
			fix: func(r *credits.QuoteRequest) { r.Images = 16 }, want: credits.ErrInvalidRequest},
		{name: "images MaxInt", mod: func(r *credits.QuoteRequest) { r.Images = math.MaxInt }, want: credits.ErrInvalidRequest},
		{name: "duration on an image tool", mod: func(r *credits.QuoteRequest) { r.Duration = time.Second }, want: credits.ErrInvalidRequest},
		{name: "resolution on an image tool", mod: func(r *credits.QuoteRequest) { r.Resolution = "720p" }, want: credits.ErrInvalidRequest},
	}
	add(expand("Quote", func() credits.QuoteRequest { return credits.QuoteRequest{Tool: "image", Plan: "studio"} }, quoteDo, noTarget, qi)...)

	// ---- NewLedger (a bad configuration is refused before any write) ----
	newLedger := func(c credits.Config) error { _, err := credits.NewLedger(h.Store, &c); return err }
	lv := []variant[credits.Config]{
		{name: "negative HoldTTL", mod: func(c *credits.Config) { c.HoldTTL = -time.Second }, want: credits.ErrInvalidRequest},
		{name: "HoldTTL above MaxHoldTTL", mod: func(c *credits.Config) { c.HoldTTL, c.MaxHoldTTL = 2*time.Hour, time.Hour }, want: credits.ErrInvalidRequest},
		{name: "negative MaxHoldTTL", mod: func(c *credits.Config) { c.MaxHoldTTL = -time.Hour }, want: credits.ErrInvalidRequest},
		{name: "negative RestoreGrace", mod: func(c *credits.Config) { c.RestoreGrace = -time.Hour }, want: credits.ErrInvalidRequest},
		{name: "negative SettleTimeout", mod: func(c *credits.Config) { c.SettleTimeout = math.MinInt64 }, want: credits.ErrInvalidRequest},
		{name: "negative signup", mod: func(c *credits.Config) { c.Signup.Amount = credits.FromUnits(-1) }, want: credits.ErrInvalidRequest},
		{name: "negative signup validity", mod: func(c *credits.Config) { c.Signup.ValidFor = -time.Hour }, want: credits.ErrInvalidRequest},
		{name: "negative daily", mod: func(c *credits.Config) { c.Daily.Amount = credits.FromUnits(math.MinInt64) }, want: credits.ErrInvalidRequest},
		{name: "negative threshold", mod: func(c *credits.Config) { c.LowBalanceThreshold = credits.FromUnits(-1) }, want: credits.ErrInvalidRequest},
	}
	add(expand("NewLedger", func() credits.Config { return credits.Config{Now: h.Clock.Now} }, newLedger, func(credits.Config) (string, string) { return "", "" }, lv)...)
	add(one("NewLedger", "nil store", credits.ErrInvalidRequest, func() badRun {
		return badRun{call: func() error { _, err := credits.NewLedger(nil, nil); return err }}
	}))
	return cases
}

// releasedByRun is the check for Run with a job whose usage cannot be
// captured: the hold made and released, nothing else, the balance as before.
func releasedByRun(t *testing.T, before, after snapshot) {
	t.Helper()
	for id, b := range before {
		a := after[id]
		if b.Balance.Available != a.Balance.Available || b.Balance.Held != a.Balance.Held || b.Balance.Spent != a.Balance.Spent {
			t.Fatalf("account %q: balance changed: before %+v, after %+v", id, b.Balance, a.Balance)
		}
		extra := a.History[len(b.History):]
		if len(extra) != 2 || extra[0].Type != credits.EntryHold || extra[1].Type != credits.EntryRelease || extra[0].Amount != extra[1].Amount {
			t.Fatalf("account %q: Run with bad usage wrote %+v; want a hold and its release", id, extra)
		}
	}
}

// chargedTheQuote is the check for usage above the quote: the account paid
// exactly its hold (the quote), no more, in one capture (for Run, after the
// hold it made).
func chargedTheQuote(t *testing.T, before, after snapshot) {
	t.Helper()
	for id, b := range before {
		a := after[id]
		extra := a.History[len(b.History):]
		if len(extra) > 0 && extra[0].Type == credits.EntryHold {
			extra = extra[1:]
		}
		if len(extra) != 1 || extra[0].Type != credits.EntryCapture {
			t.Fatalf("account %q: the capture wrote %+v", id, extra)
		}
		spent, _ := a.Balance.Spent.Sub(b.Balance.Spent)
		paid, _ := b.Balance.Available.Sub(a.Balance.Available)
		paid, _ = paid.Add(b.Balance.Held)
		paid, _ = paid.Sub(a.Balance.Held)
		if spent != extra[0].Amount || paid != spent {
			t.Fatalf("account %q: spent %s, paid %s, captured %s", id, spent, paid, extra[0].Amount)
		}
	}
}

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%05d", prefix, i)
	}
	return out
}

// accountVariants: every way to name an account that is refused.
func accountVariants[R any](field func(*R) *string) []variant[R] {
	vs := []variant[R]{
		{name: "empty account", mod: func(r *R) { *field(r) = "" }, want: credits.ErrInvalidRequest},
		{name: "account over 128 bytes", mod: func(r *R) { *field(r) = sized(credits.MaxIDLength+1, "a") }, want: credits.ErrInvalidRequest},
		{name: "unknown account", mod: func(r *R) { *field(r) = "nobody" }, want: credits.ErrUnknownAccount},
		{name: "unknown account at 128 bytes", mod: func(r *R) { *field(r) = sized(credits.MaxIDLength, "a") }, want: credits.ErrUnknownAccount},
		{name: "account with SQL", mod: func(r *R) { *field(r) = "a'; DROP TABLE credits_accounts; --" }, want: credits.ErrUnknownAccount},
		{name: "account LIKE pattern", mod: func(r *R) { *field(r) = "%" }, want: credits.ErrUnknownAccount},
		{name: "account in another case", mod: func(r *R) { *field(r) = "A" }, want: credits.ErrUnknownAccount},
		{name: "account with a trailing space", mod: func(r *R) { *field(r) = "a " }, want: credits.ErrUnknownAccount},
	}
	vs = append(vs, badText("account", func(r *R, s string) { *field(r) = s }))
	return vs
}

// keyVariants: every refused idempotency key; required says an empty key is
// refused too (Capture and Release take an optional key).
func keyVariants[R any](field func(*R) *string, required bool) []variant[R] {
	vs := []variant[R]{
		{name: "key over 255 bytes", mod: func(r *R) { *field(r) = sized(credits.MaxKeyLength+1, *field(r)) },
			fix: func(r *R) { *field(r) = sized(credits.MaxKeyLength, *field(r)) }, want: credits.ErrInvalidRequest},
		{name: "key of 1 MB", mod: func(r *R) { *field(r) = strings.Repeat("k", 1<<20) }, want: credits.ErrInvalidRequest},
	}
	if required {
		vs = append(vs, variant[R]{name: "empty key", mod: func(r *R) { *field(r) = "" }, want: credits.ErrInvalidRequest})
	}
	vs = append(vs, badText("key", func(r *R, s string) { *field(r) = s }))
	return vs
}

// noteVariants: refused notes and reasons.
func noteVariants[R any](field func(*R) *string) []variant[R] {
	vs := []variant[R]{
		{name: "text over 1024 bytes", mod: func(r *R) { *field(r) = sized(credits.MaxNoteLength+1, "n") },
			fix: func(r *R) { *field(r) = sized(credits.MaxNoteLength, "n") }, want: credits.ErrInvalidRequest},
	}
	vs = append(vs, badText("text", func(r *R, s string) { *field(r) = s }))
	return vs
}

// memberVariants: refused member IDs (on a personal account, where any
// valid member is an attribution).
func memberVariants[R any](field func(*R) *string) []variant[R] {
	vs := []variant[R]{
		{name: "member over 128 bytes", mod: func(r *R) { *field(r) = sized(credits.MaxIDLength+1, "m") },
			fix: func(r *R) { *field(r) = sized(credits.MaxIDLength, "m") }, want: credits.ErrInvalidRequest},
	}
	vs = append(vs, badText("member", func(r *R, s string) { *field(r) = s }))
	return vs
}

// teamVariants: spending from a team by someone who is not a member. The
// refusal is decided against the account, so it is recorded.
func teamVariants[R any](field func(*R) *string) []variant[R] {
	return []variant[R]{
		{name: "team, no member", mod: func(r *R) { *field(r) = "" }, want: credits.ErrNotMember, recorded: true},
		{name: "team, not a member", mod: func(r *R) { *field(r) = "stranger" }, want: credits.ErrNotMember, recorded: true},
		{name: "team, member in another case", mod: func(r *R) { *field(r) = "M1" }, want: credits.ErrNotMember, recorded: true},
		{name: "team, member with SQL", mod: func(r *R) { *field(r) = "m1' OR '1'='1" }, want: credits.ErrNotMember, recorded: true},
	}
}

// metaVariants: refused metadata (the limits: 16 entries, keys of 1 to 64
// bytes, values of up to 512 bytes).
func metaVariants[R any](field func(*R) *map[string]string) []variant[R] {
	set := func(m map[string]string) func(*R) { return func(r *R) { *field(r) = m } }
	vs := []variant[R]{
		{name: "17 metadata entries", mod: set(meta(credits.MaxMetadata+1, 4, 4)), fix: set(meta(credits.MaxMetadata, 4, 4)), want: credits.ErrInvalidRequest},
		{name: "empty metadata key", mod: set(map[string]string{"": "v"}), want: credits.ErrInvalidRequest},
		{name: "metadata key over 64 bytes", mod: set(meta(1, 65, 1)), fix: set(meta(1, 64, 1)), want: credits.ErrInvalidRequest},
		{name: "metadata value over 512 bytes", mod: set(meta(1, 1, 513)), fix: set(meta(1, 1, 512)), want: credits.ErrInvalidRequest},
		{name: "16 entries at every limit, and one more", mod: set(meta(credits.MaxMetadata+1, 64, 512)), fix: set(meta(credits.MaxMetadata, 64, 512)), want: credits.ErrInvalidRequest},
	}
	vs = append(vs,
		badText("metadata key", func(r *R, s string) { *field(r) = map[string]string{s: "v"} }),
		badText("metadata value", func(r *R, s string) { *field(r) = map[string]string{"k": s} }))
	return vs
}

// quoteVariants: quotes Reserve and Charge refuse. Each starts from a fresh
// image quote of the ledger's catalog.
func quoteVariants[R any](f *badFixture, field func(*R) *credits.Quote) []variant[R] {
	q := func(mod func(*credits.Quote)) func(*R) { return func(r *R) { mod(field(r)) } }
	return []variant[R]{
		{name: "zero quote", mod: q(func(x *credits.Quote) { *x = credits.Quote{} }), want: credits.ErrInvalidAmount},
		{name: "quote of negative total", mod: q(func(x *credits.Quote) { x.Total = credits.FromUnits(-1) }), want: credits.ErrInvalidAmount},
		{name: "quote of total MinInt64", mod: q(func(x *credits.Quote) { x.Total = credits.FromUnits(math.MinInt64) }), want: credits.ErrInvalidAmount},
		{name: "quote of zero total", mod: q(func(x *credits.Quote) { x.Total = credits.Credits{} }), want: credits.ErrInvalidAmount},
		{name: "quote total lowered", mod: q(func(x *credits.Quote) { x.Total = c1 }), want: credits.ErrQuoteMismatch},
		{name: "quote total MaxInt64", mod: q(func(x *credits.Quote) { x.Total = credits.FromUnits(credits.MaxUnits) }), want: credits.ErrQuoteMismatch},
		{name: "quote rate lowered", mod: q(func(x *credits.Quote) { x.UnitRate = c1 }), want: credits.ErrQuoteMismatch},
		{name: "quote of another tool", mod: q(func(x *credits.Quote) { x.Tool = "upscale" }), want: credits.ErrQuoteMismatch},
		{name: "quote of an unknown tool", mod: q(func(x *credits.Quote) { x.Tool = "hologram" }), want: credits.ErrQuoteMismatch},
		{name: "quote of an unknown resolution", mod: q(func(x *credits.Quote) { *x = f.quote(badVideo); x.Resolution = "8k" }), want: credits.ErrQuoteMismatch},
		{name: "quote of an unknown plan", mod: q(func(x *credits.Quote) { x.Plan = "platinum" }), want: credits.ErrQuoteMismatch},
		{name: "quote of absurd images", mod: q(func(x *credits.Quote) { x.Images = math.MaxInt }), want: credits.ErrQuoteMismatch},
		{name: "quote of negative images", mod: q(func(x *credits.Quote) { x.Images = -1 }), want: credits.ErrQuoteMismatch},
		{name: "quote of a negative duration", mod: q(func(x *credits.Quote) { *x = f.quote(badVideo); x.Duration = -time.Second }), want: credits.ErrQuoteMismatch},
		{name: "quote of duration MaxInt64", mod: q(func(x *credits.Quote) {
			*x = f.quote(badVideo)
			x.Duration, x.BilledDuration = math.MaxInt64, math.MaxInt64
		}), want: credits.ErrQuoteMismatch},
		{name: "quote of another catalog version", mod: q(func(x *credits.Quote) { x.CatalogVersion = "1999-01" }), want: credits.ErrQuoteMismatch},
		{name: "expired quote", mod: q(func(x *credits.Quote) { x.ExpiresAt = f.h.Clock.Now() }), want: credits.ErrQuoteExpired},
		{name: "quote without expiry", mod: q(func(x *credits.Quote) { x.ExpiresAt = time.Time{} }), want: credits.ErrQuoteExpired},
	}
}

// holdVariants: every way to name a hold (and its account) that is refused.
func holdVariants[R any](field func(*R) (*string, *string)) []variant[R] {
	hold := func(s string) func(*R) { return func(r *R) { h, _ := field(r); *h = s } }
	acct := func(s string) func(*R) { return func(r *R) { _, a := field(r); *a = s } }
	vs := []variant[R]{
		{name: "empty hold", mod: hold(""), want: credits.ErrInvalidRequest},
		{name: "hold over 128 bytes", mod: hold(sized(credits.MaxIDLength+1, "h")), want: credits.ErrInvalidRequest},
		{name: "unknown hold", mod: hold("hold_nope"), want: credits.ErrUnknownHold},
		{name: "hold with SQL", mod: hold("hold'; DROP TABLE credits_holds; --"), want: credits.ErrUnknownHold},
		{name: "hold LIKE pattern", mod: hold("hold_%"), want: credits.ErrUnknownHold},
		{name: "hold of another account", mod: acct("b"), want: credits.ErrUnknownHold},
		{name: "hold named with an unknown account", mod: acct("nobody"), want: credits.ErrUnknownAccount},
		{name: "unknown hold, account named", mod: func(r *R) { h, a := field(r); *h, *a = "hold_nope", "b" }, want: credits.ErrUnknownHold},
		{name: "account over 128 bytes", mod: acct(sized(credits.MaxIDLength+1, "a")), want: credits.ErrInvalidRequest},
	}
	vs = append(vs,
		badText("hold", func(r *R, s string) { hold(s)(r) }),
		badText("account", func(r *R, s string) { acct(s)(r) }))
	return vs
}

// grantVariants: refused and unknown grant IDs.
func grantVariants[R any](field func(*R) *string) []variant[R] {
	vs := []variant[R]{
		{name: "grant over 128 bytes", mod: func(r *R) { *field(r) = sized(credits.MaxIDLength+1, "g") }, want: credits.ErrInvalidRequest},
		{name: "unknown grant", mod: func(r *R) { *field(r) = "grant_nope" }, want: credits.ErrUnknownGrant},
		{name: "grant with SQL", mod: func(r *R) { *field(r) = "grant'; DROP TABLE credits_buckets; --" }, want: credits.ErrUnknownGrant},
		{name: "grant LIKE pattern", mod: func(r *R) { *field(r) = "grant_%" }, want: credits.ErrUnknownGrant},
	}
	vs = append(vs, badText("grant", func(r *R, s string) { *field(r) = s }))
	return vs
}

// ---- stored verbatim ----

// hostile are strings every store must keep byte for byte and never execute:
// SQL metacharacters, injection attempts, LIKE patterns, placeholders,
// escapes, JSON, and Unicode a careless store would normalize, trim or fold.
var hostile = []string{
	`'`, `''`, `"`, `;`, `--`, `/*`, `*/`, `\`, `\\`, `%`, `_`, `%_%`, "`",
	`'); DROP TABLE credits_accounts; --`,
	`"; DROP TABLE credits_entries; --`,
	`' OR '1'='1`,
	`'; SELECT pg_sleep(5); --`,
	`$1`, `$$`, `$tag$`, `?`, `:name`, `@p1`, `\x00`, `\0`, `E'\\000'`, `\N`,
	`{"json": true}`, `null`, `NULL`, `[]`,
	"😀", "👩‍👩‍👧‍👦", "\u202eevil\u202c", "שלום", "مرحبا", "e\u0301", "\u00e9", "Mixed", "mixed",
	" lead", "trail ", "tab\there", "new\nline", "\u200b", "\ufeffbom", "ß", "SS",
	strings.Repeat("';", 32),
}

func runStoredVerbatim(t *testing.T, newStore NewStore) {
	start := time.Now()
	store := newStore(t)
	// A catalog whose version and resolution names are hostile too (tool and
	// plan IDs are restricted to [a-z0-9._-] by the catalog).
	cfg := credits.DefaultCatalog().Config()
	cfg.Version = `v'";--/*%_\$1?`
	cfg.Tools = append(cfg.Tools, credits.Tool{ID: "hostile", Unit: credits.UnitSecond, Rates: map[string]credits.Credits{
		"'); DROP TABLE x; --": c1, "😀 4K": c3, `%_\"$1?`: c7,
	}})
	cat, err := credits.NewCatalog(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resolutions := []string{"'); DROP TABLE x; --", "😀 4K", `%_\"$1?`}
	var ids atomic.Int64
	h := NewHarness(t, store, func(c *credits.Config) {
		c.Catalog = cat
		// Hold and grant IDs are hostile as well.
		c.NewID = func(prefix string) string {
			return fmt.Sprintf("%s'); DROP TABLE credits_holds; --%%_\\$1?😀%d", prefix, ids.Add(1))
		}
	})
	ctx, L := h.Ctx, h.Ledger

	// The victim: an ordinary account whose data must come through untouched.
	h.Account(t, credits.CreateAccountRequest{ID: "victim", Metadata: map[string]string{"plan": "pro"}})
	grant(t, h, "victim", whole(100), credits.KindPurchase, time.Time{}, "v1")
	vh := reserve(t, h, "victim", h.Quote(t, credits.QuoteRequest{Tool: "image"}), "v2")
	if _, err := L.Capture(ctx, credits.CaptureRequest{Hold: vh.ID}); err != nil {
		t.Fatal(err)
	}
	f := &badFixture{t: t, h: h, accounts: []string{"victim"}}
	victim := f.snap(t, badRun{})

	team := `team'); DROP TABLE credits_accounts; --`
	members := slices.Clone(hostile)
	h.Account(t, credits.CreateAccountRequest{ID: team, Team: true, Members: members, Metadata: map[string]string{`'; --`: `"; --`}})
	grant(t, h, team, whole(10_000), credits.KindPurchase, time.Time{}, team)

	eq := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: got %q, want %q", what, got, want)
		}
	}
	for i, s := range hostile {
		res := resolutions[i%len(resolutions)]
		md := map[string]string{"m": s}
		if len(s) <= 64 {
			md[s] = s
		}
		if _, err := L.CreateAccount(ctx, credits.CreateAccountRequest{ID: s, Metadata: md}); err != nil {
			t.Fatalf("CreateAccount(%q): %v", s, err)
		}
		g, err := L.Grant(ctx, credits.GrantRequest{Account: s, Amount: whole(100), Kind: credits.KindPurchase, Key: s, Note: s})
		if err != nil {
			t.Fatalf("Grant(%q): %v", s, err)
		}
		again, err := L.Grant(ctx, credits.GrantRequest{Account: s, Amount: whole(100), Kind: credits.KindPurchase, Key: s, Note: s})
		if err != nil || !again.Replayed || again.Grant.ID != g.Grant.ID {
			t.Fatalf("Grant(%q) retried: %+v, %v; want the first grant replayed", s, again, err)
		}
		vq := h.Quote(t, credits.QuoteRequest{Tool: "hostile", Resolution: res, Duration: 3 * time.Second})
		rs, err := L.Reserve(ctx, credits.ReserveRequest{Account: s, Member: s, Quote: vq, Key: "r" + s, Metadata: md})
		if err != nil {
			t.Fatalf("Reserve(%q): %v", s, err)
		}
		if _, err := L.Capture(ctx, credits.CaptureRequest{Hold: rs.Hold.ID, Account: s, Key: "c" + s}); err != nil {
			t.Fatalf("Capture(%q): %v", s, err)
		}
		iq := h.Quote(t, credits.QuoteRequest{Tool: "image"})
		ch, err := L.Charge(ctx, credits.ChargeRequest{Account: s, Member: s, Quote: iq, Key: "ch" + s, Metadata: md})
		if err != nil {
			t.Fatalf("Charge(%q): %v", s, err)
		}
		if _, err := L.Refund(ctx, credits.RefundRequest{Charge: ch.Hold.ID, Amount: c1, Key: "f" + s, Reason: s}); err != nil {
			t.Fatalf("Refund(%q): %v", s, err)
		}
		rl, err := L.Reserve(ctx, credits.ReserveRequest{Account: s, Member: s, Quote: iq, Key: "l" + s})
		if err != nil {
			t.Fatalf("Reserve(%q): %v", s, err)
		}
		if _, err := L.Release(ctx, credits.ReleaseRequest{Hold: rl.Hold.ID, Reason: s}); err != nil {
			t.Fatalf("Release(%q): %v", s, err)
		}
		if _, err := L.Charge(ctx, credits.ChargeRequest{Account: team, Member: s, Quote: iq, Key: "t" + s}); err != nil {
			t.Fatalf("team Charge by %q: %v", s, err)
		}

		// Read everything back.
		b := h.Balance(t, s)
		eq("Balance.Account", b.Account, s)
		want := whole(150 - 7 + 1)
		want, _ = want.Sub(vq.Total)
		if b.Available != want || !b.Held.IsZero() {
			t.Errorf("account %q: available %s held %s, want %s and 0", s, b.Available, b.Held, want)
		}
		es := f.history(t, s)
		types := make([]credits.EntryType, len(es))
		for j, e := range es {
			types[j] = e.Type
			eq("entry account", e.Account, s)
		}
		wantTypes := []credits.EntryType{credits.EntryGrant, credits.EntryGrant, credits.EntryHold, credits.EntryCapture,
			credits.EntryCharge, credits.EntryRefund, credits.EntryHold, credits.EntryRelease}
		if !slices.Equal(types, wantTypes) {
			t.Fatalf("account %q: entries %v, want %v", s, types, wantTypes)
		}
		eq("grant key", es[1].Key, s)
		eq("grant note", es[1].Note, s)
		eq("grant bucket", es[1].Bucket, g.Grant.ID)
		eq("hold key", es[2].Key, "r"+s)
		eq("hold member", es[2].Member, s)
		eq("hold ID", es[2].Hold, rs.Hold.ID)
		eq("capture member", es[3].Member, s)
		eq("charge key", es[4].Key, "ch"+s)
		eq("charge member", es[4].Member, s)
		eq("refund key", es[5].Key, "f"+s)
		eq("refund reason", es[5].Note, s)
		eq("release reason", es[7].Note, s)
		st, err := store.View(ctx, credits.Query{Account: s, Holds: []string{rs.Hold.ID, ch.Hold.ID, rl.Hold.ID},
			Keys: []string{"k:" + s, "k:r" + s, "k:c" + s, "k:ch" + s, "k:f" + s, "k:l" + s}})
		if err != nil {
			t.Fatalf("View(%q): %v", s, err)
		}
		eq("stored account ID", st.Account.ID, s)
		if diff := cmp.Diff(md, st.Account.Metadata); diff != "" {
			t.Errorf("account %q metadata (-want +got):\n%s", s, diff)
		}
		for _, k := range []string{s, "r" + s, "c" + s, "ch" + s, "f" + s, "l" + s} {
			if r := st.Records["k:"+k]; r == nil {
				t.Errorf("account %q: no record under key %q", s, k)
			} else {
				eq("record key", r.Key, "k:"+k)
			}
		}
		for _, id := range []string{rs.Hold.ID, ch.Hold.ID, rl.Hold.ID} {
			hd := st.Holds[id]
			if hd == nil {
				t.Fatalf("account %q: hold %q not loaded", s, id)
			}
			eq("hold ID", hd.ID, id)
			eq("hold account", hd.Account, s)
			eq("hold member", hd.Member, s)
			if got, err := store.HoldAccount(ctx, id); err != nil || got != s {
				t.Errorf("HoldAccount(%q) = %q, %v; want %q", id, got, err, s)
			}
		}
		if diff := cmp.Diff(md, st.Holds[rs.Hold.ID].Metadata); diff != "" {
			t.Errorf("hold metadata (-want +got):\n%s", diff)
		}
		eq("hold quote resolution", st.Holds[rs.Hold.ID].Quote.Resolution, res)
		eq("hold quote version", st.Holds[rs.Hold.ID].Quote.CatalogVersion, cfg.Version)
		eq("hold quote breakdown", st.Holds[rs.Hold.ID].Quote.Breakdown, vq.Breakdown)
		eq("hold key", st.Holds[ch.Hold.ID].Key, "ch"+s)
		sp, err := L.Spending(ctx, credits.SpendingRequest{Account: s, By: credits.ByMember})
		if err != nil || len(sp.Lines) != 1 {
			t.Fatalf("Spending(%q) by member: %+v, %v", s, sp, err)
		}
		eq("spending member", sp.Lines[0].Group, s)
		CheckInvariants(t, h, s)
	}

	// The team: members and spending by member, verbatim.
	if _, err := L.UpdateMembers(ctx, credits.MembersRequest{Account: team, Add: []string{`new'member"; --`}, Remove: []string{`%`}}); err != nil {
		t.Fatal(err)
	}
	st, err := store.View(ctx, credits.Query{Account: team})
	if err != nil {
		t.Fatal(err)
	}
	wantMembers := slices.DeleteFunc(append(slices.Clone(hostile), `new'member"; --`), func(m string) bool { return m == `%` })
	sort.Strings(wantMembers)
	if diff := cmp.Diff(wantMembers, st.Account.Members); diff != "" {
		t.Errorf("team members (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{`'; --`: `"; --`}, st.Account.Metadata); diff != "" {
		t.Errorf("team metadata (-want +got):\n%s", diff)
	}
	sp, err := L.Spending(ctx, credits.SpendingRequest{Account: team, By: credits.ByMember})
	if err != nil {
		t.Fatal(err)
	}
	var groups []string
	for _, l := range sp.Lines {
		groups = append(groups, l.Group)
		if l.Charges != 1 || l.Charged != c7 {
			t.Errorf("team spending of %q: %+v", l.Group, l)
		}
	}
	sorted := slices.Clone(hostile)
	sort.Strings(sorted)
	if diff := cmp.Diff(sorted, groups); diff != "" {
		t.Errorf("team spending groups (-want +got):\n%s", diff)
	}
	CheckInvariants(t, h, team)

	// The victim is untouched so far.
	if diff := diffSnap(victim, f.snap(t, badRun{})); diff != "" {
		t.Fatalf("the victim account changed (-before +after):\n%s", diff)
	}

	// NUL is refused in every string field, and refused before any write.
	const nul = "'\x00; DROP TABLE credits_accounts; --"
	iq := h.Quote(t, credits.QuoteRequest{Tool: "image"})
	hd := reserve(t, h, "victim", iq, "v3")
	victim = f.snap(t, badRun{})
	nuls := map[string]func() error{
		"account ID": func() error { _, err := L.CreateAccount(ctx, credits.CreateAccountRequest{ID: nul}); return err },
		"metadata key": func() error {
			_, err := L.CreateAccount(ctx, credits.CreateAccountRequest{ID: "n1", Metadata: map[string]string{nul: "v"}})
			return err
		},
		"metadata value": func() error {
			_, err := L.Reserve(ctx, credits.ReserveRequest{Account: "victim", Quote: iq, Key: "n2", Metadata: map[string]string{"k": nul}})
			return err
		},
		"key": func() error {
			_, err := L.Grant(ctx, credits.GrantRequest{Account: "victim", Amount: c1, Kind: credits.KindPromo, Key: nul})
			return err
		},
		"note": func() error {
			_, err := L.Grant(ctx, credits.GrantRequest{Account: "victim", Amount: c1, Kind: credits.KindPromo, Key: "n3", Note: nul})
			return err
		},
		"member": func() error {
			_, err := L.Charge(ctx, credits.ChargeRequest{Account: "victim", Member: nul, Quote: iq, Key: "n4"})
			return err
		},
		"team member": func() error {
			_, err := L.UpdateMembers(ctx, credits.MembersRequest{Account: team, Add: []string{nul}})
			return err
		},
		"reason": func() error { _, err := L.Release(ctx, credits.ReleaseRequest{Hold: hd.ID, Reason: nul}); return err },
		"hold":   func() error { _, err := L.Capture(ctx, credits.CaptureRequest{Hold: nul}); return err },
	}
	for name, call := range nuls {
		if err := call(); !errors.Is(err, credits.ErrInvalidRequest) {
			t.Errorf("NUL in %s: got %v, want ErrInvalidRequest", name, err)
		}
	}
	if _, err := L.Balance(ctx, "n1"); !errors.Is(err, credits.ErrUnknownAccount) {
		t.Errorf("an account with NUL metadata was created: %v", err)
	}

	// The victim is untouched, and every table is still there.
	if diff := diffSnap(victim, f.snap(t, badRun{})); diff != "" {
		t.Fatalf("the victim account changed (-before +after):\n%s", diff)
	}
	CheckInvariants(t, h, "victim")
	if _, err := L.Sweep(ctx); err != nil {
		t.Fatalf("sweep after the hostile strings: %v", err)
	}
	t.Logf("%d hostile strings stored verbatim in every field, %d NUL refusals, in %s", len(hostile), len(nuls), time.Since(start).Round(time.Millisecond))
}
