// Package proxy is mcproxy's data path: event loops that own the client
// sessions and the backend connections, routing and fan-out, and the
// proxy's own stats.
//
// # The path of one command
//
// A "get k" travels through these files, in this order; everything from
// the read to the write runs on the one event loop that owns the client:
//
//	accept.go            Serve's acceptor takes the socket (accept4) and deals it to an
//	                     awake loop (loop_balance.go); the first loop may take it
//	                     first, in its own turn (accept_loop.go)
//	loop.go              the loop's turn: epoll_wait, then the ready sockets' handlers
//	session.go           the client connection: its state and its reply FIFO
//	session_read.go      parse the commands the socket holds, within the turn budget
//	                     (turn_budget.go) and the output limit (output_limit.go)
//	dispatch.go          by command: retrievals (dispatch_retrieval.go, long ones in
//	                     dispatch_pieces.go), storage, meta (dispatch_meta.go), stats ...
//	request.go           the command's place in the client's reply FIFO
//	route.go             key -> its route's pool (pool.go) -> backend, through the pool's
//	                     placement in the route table (pool_table.go); failover.go while
//	                     a backend is out or the ring or routes changed lately
//	                     (route_moves.go); replica.go, replica_read.go, replica_write.go
//	                     on a pool that keeps several copies of a key; warm.go and
//	                     warm_copy.go on a route that warms its pool from an old one
//	backend.go           the backend's connection for this loop and session; the deadline
//	backend_conn.go      queued; at the end of the turn (loop.go) written with the others
//	                     in one writev; the reply read, matched first in, first out
//	                     (fifo.go), charged to its client (output_limit.go)
//	request.go           completed: its session is marked for the end of the turn
//	session_write.go     the finished head of the FIFO rendered in order (render.go,
//	                     render_meta.go) and written in one write
//	stats.go             counted on the way (stats_result.go, stats_meta.go)
//
// Under all of it: sysio.go (the raw system calls), timers.go (deadlines
// without a timer per request), errors.go (what a failed backend means to
// a client), backend_dial.go (dialing and reconnect backoff, off the loop).
//
// Beside the path, never on it: options.go and defaults.go (settings),
// loop_balance.go (how many loops are awake: loop_load.go, loop_cpu.go),
// loop_move.go (a session moved to another loop between two commands),
// descriptors.go (the descriptor budget), ejection.go and reconfigure.go
// (the route table rebuilt when health or the config changes, swapped in
// atomically), drain.go (Shutdown), handover.go, handover_adopt.go and
// handover_wire.go (an upgrade: listeners and clients passed to a new
// process, HandOver and Adopt), stats_reply.go, stats_items.go and
// metrics.go (stats and metrics), metadump.go (lru_crawler metadump).
//
// TLS joins below the path, so the path above is the same for it:
// tls_listen.go (the TLS listener's handshakes), tls_backend.go (TLS to
// the backends) and tls_bridge.go (a TLS connection handed to a loop as
// one end of a socketpair), with tls_options.go and tls_metrics.go.
package proxy
