// Package health decides whether each backend is up or down.
//
// Two kinds of signal feed it. An active prober per backend sends "version"
// on a connection of its own every Config.Interval, each probe bounded by
// Config.Timeout. Passive signals come from the request path: the proxy
// reports a refused dial, a reset or a timed-out connection with
// ReportFailure.
//
// A backend goes down after Config.FailureLimit consecutive failures of
// either kind and comes back only after Config.SuccessLimit consecutive
// successful probes: never on a timer alone. A backend that flaps (goes
// down again within Config.FlapWindow of coming back) must also stay down
// for a hold-down time that doubles with each flap, up to
// Config.MaxHoldDown, before it may return.
//
// With Config.AlwaysUp the checker only keeps the list: nothing is probed
// and every backend stays up.
//
// The checker knows nothing of rings or requests: it calls the function
// given to New with an Event for every change, on a goroutine of its own,
// one event at a time, and the caller decides what a change means.
package health
