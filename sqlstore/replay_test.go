package sqlstore_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
)

// TestReplayRebuildsHolds: on every store, every replay of Reserve,
// Charge, Capture and Release, whose records keep their hold by ID, is
// reflect.DeepEqual to the first result (Replayed aside), however the hold
// changed since: a partial capture then a refund (into an expired grant
// too), a partly refunded charge, a release, an expiry by Sweep; holds of
// two portions, a clock in another zone with nanoseconds, nil and non-nil
// metadata. (Written by a reviewer of the change.)
func TestReplayRebuildsHolds(t *testing.T) {
	for _, store := range []struct {
		name string
		open func(t *testing.T) credits.Store
	}{
		{"memstore", func(*testing.T) credits.Store { return memstore.New() }},
		{"sqlite", func(t *testing.T) credits.Store { return newSQLiteFile(t) }},
		{"postgres", func(t *testing.T) credits.Store { return newPostgres(t) }},
	} {
		open := store.open
		t.Run(store.name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 11, 30, 9, 0, 0, 123456789, time.FixedZone("X", 3600))
			l, err := credits.NewLedger(open(t), &credits.Config{Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.CreateAccount(ctx, credits.CreateAccountRequest{ID: "a"}); err != nil {
				t.Fatal(err)
			}
			// Two buckets, the first expiring soon, so holds have two portions.
			if _, err := l.Grant(ctx, credits.GrantRequest{Account: "a", Amount: credits.MustParse("30.5"), Kind: credits.KindPromo, Key: "g1", ExpiresAt: now.Add(10 * time.Minute)}); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Grant(ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(500), Kind: credits.KindPurchase, Key: "g2"}); err != nil {
				t.Fatal(err)
			}
			video, _ := l.Quote(credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
			image, _ := l.Quote(credits.QuoteRequest{Tool: "image", Images: 2})
			meta := map[string]string{"job": "42"}

			r1, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: video, Key: "r1", Metadata: meta})
			if err != nil {
				t.Fatal(err)
			}
			c1, err := l.Capture(ctx, credits.CaptureRequest{Hold: r1.Hold.ID, Usage: credits.Usage{Duration: 2 * time.Second}, Key: "cap1"})
			if err != nil {
				t.Fatal(err)
			}
			ch, err := l.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: image, Key: "ch", Metadata: map[string]string{}})
			if err != nil {
				t.Fatal(err)
			}
			r2, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: video, Key: "r2"})
			if err != nil {
				t.Fatal(err)
			}
			rel, err := l.Release(ctx, credits.ReleaseRequest{Hold: r2.Hold.ID, Reason: "x"})
			if err != nil {
				t.Fatal(err)
			}
			r3, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: video, Key: "r3", TTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			// Change the holds: refunds (into an expired grant too), an expiry.
			now = now.Add(15 * time.Minute)
			if _, err := l.Refund(ctx, credits.RefundRequest{Charge: r1.Hold.ID, Key: "f1"}); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Refund(ctx, credits.RefundRequest{Charge: ch.Hold.ID, Amount: credits.FromUnits(1), Key: "f2"}); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Sweep(ctx); err != nil {
				t.Fatal(err)
			}

			check := func(what string, got, want any, err error) {
				t.Helper()
				if err != nil {
					t.Errorf("%s: %v", what, err)
					return
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s:\n got %#v\nwant %#v", what, got, want)
				}
			}
			r1.Replayed, c1.Replayed, ch.Replayed, r2.Replayed, rel.Replayed, r3.Replayed = true, true, true, true, true, true
			g1, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: video, Key: "r1", Metadata: meta})
			check("reserve r1", g1, r1, err)
			g2, err := l.Capture(ctx, credits.CaptureRequest{Hold: r1.Hold.ID, Usage: credits.Usage{Duration: 2 * time.Second}, Key: "cap1"})
			check("capture", g2, c1, err)
			g3, err := l.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: image, Key: "ch"})
			check("charge", g3, ch, err)
			g4, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: video, Key: "r2"})
			check("reserve r2", g4, r2, err)
			g5, err := l.Release(ctx, credits.ReleaseRequest{Hold: r2.Hold.ID})
			check("release", g5, rel, err)
			g6, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: video, Key: "r3", TTL: time.Minute})
			check("reserve r3 (expired)", g6, r3, err)
		})
	}
}
