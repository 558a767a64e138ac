package credits_test

import (
	"fmt"
	"time"

	"github.com/creditkit/credits"
)

// An image tool costs a flat rate per generated image.
func ExampleCatalog_Quote_image() {
	catalog := credits.DefaultCatalog()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) // the application's clock

	quote, err := catalog.Quote(credits.QuoteRequest{Tool: "image", Images: 3}, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(quote.Breakdown)
	fmt.Println("total:", quote.Total)
	fmt.Println("valid until:", quote.ExpiresAt.Format(time.RFC3339))

	// Output:
	// 3 images × 7 credits = 21 credits
	// total: 21
	// valid until: 2026-11-25T12:15:00Z
}

// A video tool costs a rate per second of output, by resolution; a plan
// discounts the rate. The quote is the most the job can cost: the actual
// output is priced with the quote's own rate and rounding, capped at the
// quote's total.
func ExampleCatalog_Quote_videoWithPlan() {
	catalog := credits.DefaultCatalog()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

	quote, err := catalog.Quote(credits.QuoteRequest{
		Tool:       "video-pro",
		Resolution: "720p",
		Duration:   4200 * time.Millisecond,
		Plan:       "pro",
	}, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(quote.Breakdown)
	fmt.Println("billed:", quote.BilledDuration, "total:", quote.Total)

	// The job produced 3.4 s of video: 4 started seconds at 13.5 credits/s.
	cost, capped, err := quote.Cost(credits.Usage{Duration: 3400 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("cost:", cost, "capped:", capped)

	// A resolution the tool does not offer is refused with the ones it does.
	_, err = catalog.Quote(credits.QuoteRequest{Tool: "video-pro", Resolution: "4k", Duration: time.Second}, now)
	fmt.Println(err)

	// Output:
	// 5 s (4.2 s rounded up to a multiple of 1 s) × 13.5 credits/s at 720p (plan pro: 10% off 15) = 67.5 credits
	// billed: 5s total: 67.5
	// cost: 54 capped: false
	// credits: unknown resolution "4k" for tool "video-pro" (offered: 480p, 720p, 1080p)
}
