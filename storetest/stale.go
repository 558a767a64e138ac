package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditkit/credits"
)

// pausing holds the apply of one armed Update until released: the state
// is loaded, the change not yet written.
type pausing struct {
	credits.Store
	armed   atomic.Bool
	paused  chan struct{}
	release chan struct{}
}

func (p *pausing) Update(ctx context.Context, q credits.Query, apply func(*credits.State) (*credits.Change, error)) error {
	return p.Store.Update(ctx, q, func(st *credits.State) (*credits.Change, error) {
		if p.armed.CompareAndSwap(true, false) {
			close(p.paused)
			<-p.release
		}
		return apply(st)
	})
}

// RunStaleLoads checks that a change computed on state loaded before
// another operation changed the account never undoes that change: a
// member change (which appends no history entry, so the account's Seq does
// not move) lands while a charge by a member waits between its load and
// its write. A locking store makes the member change wait; a store that
// writes optimistically, or from a cached state, must notice and apply the
// charge again.
func RunStaleLoads(t *testing.T, newStore NewStore) {
	for _, tc := range []struct {
		name string
		req  credits.MembersRequest
		want []string
	}{
		{"AddMember", credits.MembersRequest{Account: "team", Add: []string{"n"}}, []string{"m", "n", "o"}},
		{"RemoveOtherMember", credits.MembersRequest{Account: "team", Remove: []string{"o"}}, []string{"m"}},
		// The charging member removed: if the removal came first, the
		// charge must be refused, not made with the members it loaded.
		{"RemoveChargingMember", credits.MembersRequest{Account: "team", Remove: []string{"m"}}, []string{"o"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &pausing{Store: newStore(t), paused: make(chan struct{}), release: make(chan struct{})}
			h := NewHarness(t, p, nil)
			h.Account(t, credits.CreateAccountRequest{ID: "team", Team: true, Members: []string{"m", "o"}})
			if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "team", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "g"}); err != nil {
				t.Fatal(err)
			}
			q := h.Quote(t, credits.QuoteRequest{Tool: "image"})
			before := h.Balance(t, "team")

			p.armed.Store(true)
			var wg sync.WaitGroup
			var chargeErr error
			wg.Go(func() {
				_, chargeErr = h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "team", Member: "m", Quote: q, Key: "c"})
			})
			<-p.paused
			membersDone := make(chan error, 1)
			go func() {
				_, err := h.Ledger.UpdateMembers(h.Ctx, tc.req)
				membersDone <- err
			}()
			// A store that does not lock lets the member change through
			// now; one that locks holds it until the charge is written.
			var membersErr error
			membersFirst := false
			select {
			case membersErr = <-membersDone:
				membersFirst = true
				membersDone <- membersErr
			case <-time.After(300 * time.Millisecond):
			}
			close(p.release)
			wg.Wait()
			membersErr = <-membersDone
			charged := chargeErr == nil
			if membersErr != nil || (chargeErr != nil && !(membersFirst && errors.Is(chargeErr, credits.ErrNotMember) && !slices.Contains(tc.want, "m"))) {
				t.Fatalf("charge: %v; member change: %v (finished while the charge waited: %v)", chargeErr, membersErr, membersFirst)
			}
			if membersFirst && !slices.Contains(tc.want, "m") && charged {
				t.Fatal("a member removed while its charge waited was charged: the write used the members it had loaded")
			}
			st, err := p.View(h.Ctx, credits.Query{Account: "team"})
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Sorted(slices.Values(st.Account.Members)); !slices.Equal(got, tc.want) {
				t.Fatalf("members %q after a charge loaded before the change, want %q: the charge's write undid the member change", got, tc.want)
			}
			want := before.Available
			if charged {
				want, _ = want.Sub(q.Total)
			}
			if after := h.Balance(t, "team"); after.Available != want {
				t.Fatalf("available %s, want %s (charged: %v)", after.Available, want, charged)
			}
			CheckInvariants(t, h, "team")
			t.Logf("the member change finished while the charge waited: %v", membersFirst)
		})
	}
}
