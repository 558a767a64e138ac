// Package credithttp is an HTTP API for a [credits.Ledger], ready to mount
// in a service's own process: JSON endpoints for quotes, holds, instant
// charges, balances and history, a server-sent events stream of an
// account's entries, and the admin calls (grants, debits, voids, refunds,
// member limits) behind a separate permission.
//
// Every request is authorized by the application's [Authorizer], which
// says which account the caller may act on (and as which member) and
// whether it may settle holds or call admin endpoints. The account is in
// the path (the Authorizer reads it with r.PathValue("account"); it is ""
// for GET /catalog, where any Principal it returns without an error
// passes); a request for any other account is refused with 403 before
// the ledger is touched.
//
// Settling a hold, capture or release, needs Principal.Settle: it says
// what a job cost, so it belongs to the generation workers, never to an
// end user (who could capture their hold for less, or release it while the
// job runs and have the output for free).
//
// Mount it under a prefix with [http.StripPrefix]:
//
//	h, err := credithttp.New(credithttp.Config{Ledger: ledger, Authorize: auth})
//	mux.Handle("/api/", http.StripPrefix("/api", h))
//
// # Endpoints
//
// Paths are relative to the mount point. {account} is the account's ID;
// {job} is the Idempotency-Key the hold was reserved under (the ledger's
// ReserveKey, and the Job of the hold's history entries). A query
// parameter an endpoint does not take is refused (400, naming it), so a
// cache-buster such as ?_=123 is too: send Cache-Control instead; every
// response says no-store.
//
//	GET  /catalog                                   {"version", "tools": Catalog.Tools()}
//	POST /accounts/{account}/quote                  QuoteRequest → {"quote": Quote, "sealed": "q1.…"}
//	POST /accounts/{account}/reserve                {quote, ttl_ms, member, metadata} → 201 ReserveResult  (Idempotency-Key required)
//	POST /accounts/{account}/charge                 {quote, member, metadata} → 201 ChargeResult            (Idempotency-Key required)
//	GET  /accounts/{account}/holds/{hold}           Hold
//	GET  /accounts/{account}/jobs/{job}             Hold, by the Idempotency-Key of its reserve
//	POST /accounts/{account}/holds/{hold}/capture   {usage: {duration_ms, images}, amount} → ChargeResult   (Settle)
//	POST /accounts/{account}/jobs/{job}/capture     the same, by the reserve's key                          (Settle)
//	POST /accounts/{account}/holds/{hold}/release   {reason} → ReleaseResult                                 (Settle)
//	POST /accounts/{account}/jobs/{job}/release     the same, by the reserve's key                          (Settle)
//	GET  /accounts/{account}                        Account
//	GET  /accounts/{account}/balance                Balance
//	GET  /accounts/{account}/grants                 ?all=true&limit=&after= → GrantsPage
//	GET  /accounts/{account}/history                ?before=&limit=&type=&since=&until= → HistoryPage, newest first
//	                                                ?after=seq instead of before: oldest first, after that entry
//	GET  /accounts/{account}/activity               ?member=&before=&limit=&since=&until= → ActivityPage
//	GET  /accounts/{account}/spending               ?by=tool|day|member&since=&until= → SpendingReport
//	GET  /accounts/{account}/events                 text/event-stream of the account's entries (Last-Event-ID or ?after=seq)
//
// Admin (Principal.Admin):
//
//	POST /accounts/{account}/grants                 {amount, kind, expires_at, note} → 201 GrantResult      (Idempotency-Key required)
//	POST /accounts/{account}/debits                 {amount, grant, kinds, partial, reason} → DebitResult   (Idempotency-Key required)
//	POST /accounts/{account}/grants/{grant}/void    {reason} → VoidGrantResult                              (Idempotency-Key required)
//	POST /accounts/{account}/charges/{charge}/refund {amount, reason} → RefundResult                        (Idempotency-Key required)
//	PUT  /accounts/{account}/member-limits          {period, default, members} → MemberLimitsResult         (Idempotency-Key required)
//
// A POST or PUT must say Content-Type: application/json (or another
// +json type), even with an
// empty body: browsers send that header across origins only after a CORS
// preflight, so a cookie session cannot be used by another site's page.
// Request bodies are JSON objects of at most [Config.MaxBodyBytes], decoded
// strictly: an unknown field, a key that is not a field's exact name (JSON
// keys are case-sensitive here) or is given twice, a second value or a
// wrong type is refused. A capture that says nothing (no usage, no amount)
// charges the hold as quoted; one that says "nothing was used" (an amount
// of 0, or a usage all zero) is refused: release the hold instead.
// Responses are the ledger's own JSON shapes (amounts as decimal strings,
// durations in milliseconds under *_ms names, times in RFC 3339).
//
// # Events
//
// GET /accounts/{account}/events streams the account's history entries as
// they are written, each as one server-sent event: "id: <account>#<seq>"
// ([credits.EventID]), "event: <entry type>" (so an EventSource listens
// with addEventListener("release", …) and the like, not onmessage), and
// "data: <entry JSON>". A reconnecting EventSource resumes after its
// Last-Event-ID. A page that loads the balance and then opens the stream
// passes ?after=<the account's seq> so that nothing written in between is
// missed; without it the stream starts at the latest entry. A stream
// looks for new entries every [Config.EventsPoll], and at once after a
// write of this handler to its account or a [Handler.Notify] of it (call
// Notify for writes made elsewhere: a worker's capture, or, across
// servers, from a [credits.Feed] consumer). Every
// [Config.EventsKeepAlive] an idle stream sends a comment and the
// Authorizer is asked again: a stream whose access was withdrawn ends.
//
// # Idempotency
//
// The Idempotency-Key header becomes the ledger's key. Sent again with the
// same body, a call returns the first call's result (with the header
// Idempotent-Replayed: true); with a different body it is refused with 409
// idempotency_conflict, and nothing is written.
//
// # Errors
//
// Every error is an RFC 9457 problem document (application/problem+json):
//
//	{"type": "https://creditkit.dev/problems/insufficient_credits",
//	 "title": "Insufficient credits", "status": 402,
//	 "detail": "credits: insufficient credits: …",
//	 "code": "insufficient_credits", "missing": "12.5"}
//
// code is [credits.Code]'s, and the status its suggested one. A refused
// field names itself in "field" (its JSON name, or "Idempotency-Key" for
// the header); insufficient credits add "available", "required" and
// "missing"; a member over their limit adds "remaining". Errors of the
// handler itself have codes too: unauthenticated (401), forbidden (403),
// not_found (404), method_not_allowed (405), body_too_large (413),
// unsupported_media_type (415), too_many_streams (503). A 5xx problem's
// detail never carries its cause (which is logged): a store's error can
// name a host or a statement.
package credithttp
