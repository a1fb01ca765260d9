package protocol

import (
	"fmt"
	"strings"
	"testing"
)

// loopReader serves its input over and over, never ending, so a benchmark
// measures the parser in its steady state.
type loopReader struct {
	in  []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.in[l.off:])
	l.off = (l.off + n) % len(l.in)
	return n, nil
}

// BenchmarkRequestReader parses a pipelined mix of single gets, multi-gets
// and sets (100-byte values), as one client's read buffer holds them. One
// op is one command, its data block included.
func BenchmarkRequestReader(b *testing.B) {
	var in []byte
	val := strings.Repeat("v", 100)
	const rounds = 100
	for i := 0; i < rounds; i++ {
		in = fmt.Appendf(in, "get user:%d\r\n", i)
		in = fmt.Appendf(in, "get user:%d user:%d user:%d user:%d\r\n", i, i+1, i+2, i+3)
		in = fmt.Appendf(in, "set user:%d 0 3600 %d\r\n%s\r\n", i, len(val), val)
	}
	const perRound = 3
	benchRequestReader(b, in, rounds*perRound, len(val))
}

// benchRequestReader parses in, which holds commands commands whose data
// blocks are at most valLen bytes, over and over. One op is one command,
// its data block included.
func benchRequestReader(b *testing.B, in []byte, commands, valLen int) {
	rr := NewRequestReader(&loopReader{in: in}, 0)
	var req Request
	data := make([]byte, valLen+2)
	b.SetBytes(int64(len(in) / commands))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := rr.Next(&req); err != nil {
			b.Fatal(err)
		}
		if req.Op.HasData() {
			if err := rr.ReadData(data[:req.Bytes+2]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// sentCommand is a command sent to a backend, encoded, and its Op.
type sentCommand struct {
	op  Op
	cmd []byte
}

// replyMix returns a backend's replies to the benchmarks' mix of commands
// (a hit, a multi-get with two hits and two misses, STORED, and a miss;
// 100-byte values), 100 rounds of it, and the commands they answer.
func replyMix() (in []byte, cmds []sentCommand) {
	val := strings.Repeat("v", 100)
	const rounds = 100
	for i := 0; i < rounds; i++ {
		u := func(j int) string { return fmt.Sprintf("user:%d", j) }
		in = fmt.Appendf(in, "VALUE user:%d 0 %d\r\n%s\r\nEND\r\n", i, len(val), val)
		in = fmt.Appendf(in, "VALUE user:%d 0 %d\r\n%s\r\nVALUE user:%d 0 %d\r\n%s\r\nEND\r\n", i, len(val), val, i+2, len(val), val)
		in = append(in, "STORED\r\n"...)
		in = append(in, "END\r\n"...)
		cmds = append(cmds,
			sentCommand{OpGet, retrieval(OpGet, u(i))},
			sentCommand{OpGet, retrieval(OpGet, u(i), u(i+1), u(i+2), u(i+3))},
			sentCommand{OpSet, []byte("set k 0 0 1\r\nx\r\n")},
			sentCommand{OpGet, retrieval(OpGet, u(i))})
	}
	return in, cmds
}

// BenchmarkReplyReader parses a backend's replies to that mix: a hit, a
// multi-get with two hits and two misses, STORED, and a miss. One op is one
// reply.
func BenchmarkReplyReader(b *testing.B) { benchReplyReader(b, false) }

// BenchmarkReplyReaderTo is BenchmarkReplyReader with each reply checked
// against its command: the cost of the check is the difference.
func BenchmarkReplyReaderTo(b *testing.B) { benchReplyReader(b, true) }

// benchReplyReader reads the replies of replyMix over and over, each as its
// command's kind with ReadReply or, with check, against the command itself
// with ReadReplyTo.
func benchReplyReader(b *testing.B, check bool) {
	in, cmds := replyMix()
	kinds := make([]ReplyKind, len(cmds))
	for i, s := range cmds {
		kinds[i] = KindOf(s.op)
	}
	rr := NewReplyReader(&loopReader{in: in}, 0)
	var r Reply
	b.SetBytes(int64(len(in) / len(cmds)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(cmds)
		var err error
		if check {
			err = rr.ReadReplyTo(cmds[j].op, cmds[j].cmd, &r)
		} else {
			err = rr.ReadReply(kinds[j], &r)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
