package credits_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
)

// A refused request names the offending field as an API client sends it,
// by its JSON name, in the error's Field and in its message.
func TestRefusalsNameTheJSONField(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	l, err := credits.NewLedger(memstore.New(), &credits.Config{Now: func() time.Time { return now }, Signup: credits.Reward{Amount: credits.Whole(50)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.CreateAccount(ctx, credits.CreateAccountRequest{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	q, err := l.QuoteFor(ctx, "a", credits.QuoteRequest{Tool: "image"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, field, message string
		amount               bool
		call                 func() error
	}{
		{"grant without account", "account", "credits: invalid request: account is required", false, func() error {
			_, err := l.Grant(ctx, credits.GrantRequest{Amount: credits.Whole(1), Kind: credits.KindPromo, Key: "k"})
			return err
		}},
		{"grant of nothing", "amount", "credits: invalid amount: amount must be positive, got 0", true, func() error {
			_, err := l.Grant(ctx, credits.GrantRequest{Account: "a", Kind: credits.KindPromo, Key: "k"})
			return err
		}},
		{"purchase that expires", "expires_at", "", false, func() error {
			_, err := l.Grant(ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(1), Kind: credits.KindPurchase, ExpiresAt: now.Add(time.Hour), Key: "k"})
			return err
		}},
		{"reserve without key", "key", "credits: invalid request: key is required", false, func() error {
			_, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: q})
			return err
		}},
		{"reserve for a week and a day", "ttl_ms", "", false, func() error {
			_, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: "k", TTL: 8 * 24 * time.Hour})
			return err
		}},
		{"metadata value with a control character", "metadata.job", "credits: invalid request: metadata.job contains a control character", false, func() error {
			_, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: "k", Metadata: map[string]string{"job": "a\x00"}})
			return err
		}},
		{"capture by key without account", "account", "", false, func() error {
			_, err := l.Capture(ctx, credits.CaptureRequest{ReserveKey: "job-1"})
			return err
		}},
		{"refund of a negative amount", "amount", "", true, func() error {
			_, err := l.Refund(ctx, credits.RefundRequest{Charge: "hold_x", Amount: credits.FromUnits(-1), Key: "k"})
			return err
		}},
		{"debit without reason", "reason", "credits: invalid request: reason is required", false, func() error {
			_, err := l.Debit(ctx, credits.DebitRequest{Account: "a", Amount: credits.Whole(1), Key: "k"})
			return err
		}},
		{"debit of an unknown kind", "kinds", "", false, func() error {
			_, err := l.Debit(ctx, credits.DebitRequest{Account: "a", Amount: credits.Whole(1), Kinds: []credits.GrantKind{"gift"}, Reason: "r", Key: "k"})
			return err
		}},
		{"history upside down", "until", "", false, func() error {
			_, err := l.History(ctx, credits.HistoryRequest{Account: "a", Since: now, Until: now.Add(-time.Hour)})
			return err
		}},
	} {
		err := c.call()
		var fe *credits.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || fe.Reason == "" {
			t.Errorf("%s: %v (%#v), want a *FieldError for %q", c.name, err, fe, c.field)
			continue
		}
		want := credits.ErrInvalidRequest
		if c.amount {
			want = credits.ErrInvalidAmount
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: %v does not match %v", c.name, err, want)
		}
		if c.message != "" && err.Error() != c.message {
			t.Errorf("%s: message %q, want %q", c.name, err, c.message)
		}
	}
}
