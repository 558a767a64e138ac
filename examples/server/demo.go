package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/creditkit/credits"
)

// setupDemo creates the demo accounts when they are missing, and is a no-op
// when they exist: every step is idempotent (CreateAccount returns the
// first result for the same request; the grant and the limits are keyed).
//
//   - alice: personal, on the "pro" plan (10 % off, 500 credits a month),
//     with the signup credits;
//   - bob: personal, no plan (list prices), with the signup credits;
//   - studio: a team account of alice and bob on the "studio" plan (2,000
//     credits a month), with a purchase of 1,000 credits and a monthly
//     limit per member.
//
// A freshly created account gets a few past generations, so that the
// dashboard's history and charts have something to show.
func setupDemo(ctx context.Context, l *credits.Ledger) error {
	accounts := []credits.CreateAccountRequest{
		{ID: "alice", Plan: "pro"},
		{ID: "bob"},
		{ID: "studio", Plan: "studio", Team: true, Members: demoTeams[0].Members},
	}
	for _, req := range accounts {
		res, err := l.CreateAccount(ctx, req)
		if errors.Is(err, credits.ErrAccountExists) {
			continue // created by an earlier version of this demo, differently
		}
		if err != nil {
			return fmt.Errorf("account %s: %w", req.ID, err)
		}
		if !res.Replayed {
			if err := seed(ctx, l, req.ID); err != nil {
				return fmt.Errorf("account %s: past generations: %w", req.ID, err)
			}
		}
	}
	if _, err := l.Grant(ctx, credits.GrantRequest{
		Account: "studio", Amount: credits.Whole(1000), Kind: credits.KindPurchase,
		Key: "demo:studio-first-purchase", Note: "the team's first purchase",
	}); err != nil {
		return err
	}
	if _, err := l.SetMemberLimits(ctx, credits.MemberLimitsRequest{
		Account: "studio", Period: credits.PeriodMonth,
		Members: map[string]credits.Credits{"alice": credits.Whole(800), "bob": credits.Whole(300)},
		Key:     "demo:studio-limits",
	}); err != nil {
		return err
	}
	return nil
}

// seedJob is a past generation of a demo account.
type seedJob struct {
	member string // on a team account
	req    credits.QuoteRequest
	prompt string
	actual time.Duration // a video's output length; zero: an image, charged at once
}

// seeds are the demo accounts' first generations.
var seeds = map[string][]seedJob{
	"alice": {
		{"", credits.QuoteRequest{Tool: "image", Images: 2}, "a lighthouse at dusk, oil painting", 0},
		{"", credits.QuoteRequest{Tool: "upscale"}, "", 0},
		{"", credits.QuoteRequest{Tool: "video", Resolution: "480p", Duration: 6 * time.Second}, "waves rolling onto a black sand beach", 4200 * time.Millisecond},
	},
	"bob": {
		{"", credits.QuoteRequest{Tool: "image"}, "a red bicycle against a white wall", 0},
	},
	"studio": {
		{"alice", credits.QuoteRequest{Tool: "image", Images: 4}, "product shots of a ceramic mug", 0},
		{"bob", credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 8 * time.Second}, "drone shot over a pine forest", 6300 * time.Millisecond},
		{"alice", credits.QuoteRequest{Tool: "remove-background", Images: 3}, "", 0},
		{"bob", credits.QuoteRequest{Tool: "avatar-video", Resolution: "720p", Duration: 20 * time.Second}, "a presenter introducing the spring collection", 17 * time.Second},
	},
}

// seed makes a new account's first generations: images charged at once,
// and videos held, then captured by the length they came out.
func seed(ctx context.Context, l *credits.Ledger, account string) error {
	for i, j := range seeds[account] {
		q, err := l.QuoteFor(ctx, account, j.req)
		if err != nil {
			return err
		}
		key := fmt.Sprintf("demo:seed-%d", i+1)
		var meta map[string]string
		if j.prompt != "" {
			meta = map[string]string{"prompt": j.prompt}
		}
		if j.actual == 0 {
			if _, err := l.Charge(ctx, credits.ChargeRequest{Account: account, Member: j.member, Quote: q, Key: key, Metadata: meta}); err != nil {
				return err
			}
			continue
		}
		r, err := l.Reserve(ctx, credits.ReserveRequest{Account: account, Member: j.member, Quote: q, Key: key, Metadata: meta})
		if err != nil {
			return err
		}
		if _, err := l.Capture(ctx, credits.CaptureRequest{Hold: r.Hold.ID, Account: account, Usage: credits.Usage{Duration: j.actual}}); err != nil {
			return err
		}
	}
	return nil
}
