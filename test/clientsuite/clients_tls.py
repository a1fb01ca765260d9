"""Drive memcached over TLS with pymemcache's tls_context (mutual TLS: the
client presents a certificate) and print a transcript. Run against
memcached -Z and against mcproxy's TLS listener, the transcripts must be
identical. Usage: clients_tls.py CA CERT KEY HOST PORT"""
import ssl
import sys

from pymemcache.client.base import Client  # python3-pymemcache

ca, cert, key, host, port = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
lines = []


def out(*args):
    lines.append(" ".join(repr(a) for a in args))


c = Client((host, port), connect_timeout=3, timeout=5, tls_context=ctx)
out("tls version", c.version() is not None)
out("tls set/get", c.set("tls:a", b"hello", noreply=False), c.get("tls:a"))
out("tls add", c.add("tls:a", b"x", noreply=False), c.add("tls:b", b"y", noreply=False))
out("tls incr", c.set("tls:n", b"10", noreply=False), c.incr("tls:n", 5), c.incr("tls:missing", 1))
value, cas = c.gets("tls:a")
out("tls cas", c.cas("tls:a", b"new", cas, noreply=False), c.get("tls:a"))
keys = ["tls:multi:%d" % i for i in range(200)]
out("tls set_many failed", c.set_many({k: k.encode() * 20 for k in keys}, noreply=False))
got = c.get_many(keys + ["tls:absent"])
out("tls get_many", len(got), all(got[k] == k.encode() * 20 for k in keys))
big = b"v" * 300000
out("tls big", c.set("tls:big", big, noreply=False), c.get("tls:big") == big)
out("tls delete", c.delete("tls:a", noreply=False), c.get("tls:a"))
c.close()
print("\n".join(lines))
