package credits_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
)

// The naive baseline every ledger benchmark is compared with in the same
// run: a mutex and an int64 balance per account, no history, no holds, no
// idempotency.
type naiveBalances struct {
	mu  []sync.Mutex
	bal []int64
}

func newNaive(n int) *naiveBalances {
	return &naiveBalances{mu: make([]sync.Mutex, n), bal: make([]int64, n)}
}

func (n *naiveBalances) grant(i int, amount int64) { n.bal[i] += amount }

func (n *naiveBalances) charge(i int, amount int64) bool {
	n.mu[i].Lock()
	defer n.mu[i].Unlock()
	if n.bal[i] < amount {
		return false
	}
	n.bal[i] -= amount
	return true
}

// compare runs the naive baseline and then the ledger, b.N operations each,
// in parallel when parallel is set, and reports the ledger's ns/op with the
// baseline's and the ratio ("x-naive-time": ledger time ÷ naive time, how
// many times slower the ledger is).
func compare(b *testing.B, parallel bool, naive, ledger func(op int64)) {
	var seq atomic.Int64
	runOps := func(f func(int64)) time.Duration {
		seq.Store(0)
		start := time.Now()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					f(seq.Add(1))
				}
			})
		} else {
			for range b.N {
				f(seq.Add(1))
			}
		}
		return time.Since(start)
	}
	b.StopTimer()
	naiveTime := runOps(naive)
	b.StartTimer()
	ledgerTime := runOps(ledger)
	b.StopTimer()
	naiveNs := float64(naiveTime.Nanoseconds()) / float64(b.N)
	ledgerNs := float64(ledgerTime.Nanoseconds()) / float64(b.N)
	b.ReportMetric(naiveNs, "naive-ns/op")
	b.ReportMetric(ledgerNs/naiveNs, "x-naive-time")
}

func benchLedger(b *testing.B, accounts int) (*credits.Ledger, credits.Quote) {
	l, err := credits.NewLedger(memstore.New(), nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := range accounts {
		id := fmt.Sprint("acct-", i)
		if _, err := l.CreateAccount(ctx, credits.CreateAccountRequest{ID: id}); err != nil {
			b.Fatal(err)
		}
		if _, err := l.Grant(ctx, credits.GrantRequest{Account: id, Amount: credits.Whole(1e12), Kind: credits.KindPurchase, Key: "seed"}); err != nil {
			b.Fatal(err)
		}
	}
	q, err := l.Quote(credits.QuoteRequest{Tool: "image"})
	if err != nil {
		b.Fatal(err)
	}
	return l, q
}

// BenchmarkCharge: one-step charges with full semantics (idempotency
// record, bucket selection, history entry) against a mutex and an int64.
func BenchmarkCharge(b *testing.B) {
	ctx := context.Background()
	for _, bc := range []struct {
		name     string
		accounts int
		parallel bool
	}{
		{"hot-account", 1, false},
		{"hot-account-parallel", 1, true},
		{"10k-accounts-parallel", 10_000, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l, q := benchLedger(b, bc.accounts)
			n := newNaive(bc.accounts)
			for i := range bc.accounts {
				n.grant(i, 1e15)
			}
			pick := func(op int64) int {
				if bc.accounts == 1 {
					return 0
				}
				return rand.IntN(bc.accounts)
			}
			compare(b, bc.parallel,
				func(op int64) {
					if !n.charge(pick(op), q.Total.Units()) {
						b.Error("naive charge refused")
					}
				},
				func(op int64) {
					_, err := l.Charge(ctx, credits.ChargeRequest{Account: fmt.Sprint("acct-", pick(op)), Quote: q, Key: fmt.Sprint("c", op)})
					if err != nil {
						b.Error(err)
					}
				})
		})
	}
}

// BenchmarkReserveCapture: a reserve and a capture by usage on one hot
// account, against two naive mutex operations (take, give back the rest).
func BenchmarkReserveCapture(b *testing.B) {
	ctx := context.Background()
	l, _ := benchLedger(b, 1)
	q, err := l.Quote(credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	n := newNaive(1)
	n.grant(0, 1e15)
	compare(b, false,
		func(op int64) {
			n.charge(0, q.Total.Units())
			n.charge(0, -8000) // give back the unused part
		},
		func(op int64) {
			r, err := l.Reserve(ctx, credits.ReserveRequest{Account: "acct-0", Quote: q, Key: fmt.Sprint("r", op)})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := l.Capture(ctx, credits.CaptureRequest{Hold: r.Hold.ID, Account: "acct-0", Usage: credits.Usage{Duration: 4 * time.Second}}); err != nil {
				b.Fatal(err)
			}
		})
}
