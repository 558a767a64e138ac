// Package webhooks delivers the ledger's feed ([credits.Feed]) to an HTTP
// endpoint, signed, retried and in order, and verifies those deliveries on
// the receiving side.
//
// A [Sender] reads a named feed consumer, POSTs each event to one URL, one
// at a time, in feed order (so each account's events arrive in the order
// they happened), and acknowledges an event only once the endpoint answered
// 2xx or the event was dead-lettered. Delivery is at least once: a sender
// killed between the receiver's reply and the acknowledgement, or a
// receiver that handled an event but failed to answer, gets the event
// again. A receiver deduplicates by the event's ID, which is the same on
// every delivery.
//
// [Verify] and [VerifyRequest] check a delivery on the receiving side.
//
// # The request
//
// Each attempt is an HTTP POST to the configured URL with
//
//	Content-Type:      application/json
//	Credits-Event-Id:  <the event's id, e.g. alice#12>
//	Credits-Timestamp: <the attempt's time, in Unix seconds, decimal>
//	Credits-Signature: v1=<hex signature>[,v1=<hex signature>…]
//
// and the event's JSON as the body: the fields of a [credits.Entry]
// ("account", "seq", "type", "amount", "available", "held", "at", …)
// with "id". Amounts are decimal strings.
//
// # The signature
//
// For a secret S (the bytes of the shared secret), a timestamp T (the
// decimal string exactly as sent in Credits-Timestamp) and the body B (the
// raw bytes received, before any parsing), the signature is
//
//	lowercase hex( HMAC-SHA256( key = S, message = T + "." + B ) )
//
// where + is byte concatenation and "." is the single byte 0x2E. The
// header carries one "v1=<signature>" per secret the sender signs with,
// separated by commas (a sender that rotates its secret signs with the old
// and the new one for a while). A receiver:
//
//  1. reads the raw body (at most [MaxBodyBytes]; refuse a larger one);
//  2. computes the signature with each of its secrets (several while it
//     rotates) and accepts if any of them equals any v1= value of the
//     header, comparing in constant time; values of another scheme than
//     v1 are ignored;
//  3. refuses the request if T is further than its tolerance (5 minutes
//     by default, [DefaultTolerance]) from its own clock, in either
//     direction: this bounds how long a captured request can be replayed;
//  4. parses the body, and deduplicates by its "id" (a unique key in its
//     database, stored in the same transaction as the event's effect);
//  5. answers 2xx once the event is handled (a duplicate too). Any other
//     answer, or none, is a failure and the event is sent again.
//
// A test vector: the secret "whsec-test-secret", the timestamp
// "1800000000" and the body {"id":"alice#1","amount":"50"} sign as
//
//	v1=d477a0bf2047d4ac08f934fd22982ac014e52203441258049791c31e5bcbd8a3
//
// (openssl: printf '%s' '1800000000.{"id":"alice#1","amount":"50"}' |
// openssl dgst -sha256 -hmac 'whsec-test-secret').
//
// Credits-Event-Id is a convenience, not signed: trust the "id" of the
// signed body ([Verify] refuses a request whose header disagrees with it).
// Each attempt is signed afresh, with its own timestamp, so a retry hours
// later is not refused as stale.
//
// # Retries and the dead letter
//
// A response other than 2xx (redirects are not followed by the default
// client, and 410 Gone is no exception), a network error or a timeout is
// a failed attempt. The sender waits (exponential backoff with jitter,
// bounded: [DefaultBackoff]) and tries again, up to MaxAttempts attempts
// in all. Then the event is dead-lettered: handed to OnDeadLetter (and
// logged), and, once OnDeadLetter returns nil, acknowledged, so that
// delivery goes on with the next event. A dead-lettered event is still in
// the ledger's history ([credits.Ledger.History]); OnDeadLetter is where an
// application records it to deliver again later.
package webhooks
