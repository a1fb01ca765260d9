"""Drive memcached through two Python client libraries and print a
transcript. Run against memcached and against mcproxy, the transcripts must
be identical. Usage: clients.py HOST PORT"""
import sys

import memcache  # python3-memcache (python-memcached)
from pymemcache.client.base import Client  # python3-pymemcache

host, port = sys.argv[1], int(sys.argv[2])
lines = []


def out(*args):
    lines.append(" ".join(repr(a) for a in args))


# --- pymemcache ----------------------------------------------------------
c = Client((host, port), connect_timeout=3, timeout=5)
out("pm flush", c.flush_all(noreply=False))
out("pm set/get", c.set("pm:a", b"hello", noreply=False), c.get("pm:a"))
out("pm add", c.add("pm:a", b"x", noreply=False), c.add("pm:b", b"y", noreply=False))
out("pm replace", c.replace("pm:b", b"z", noreply=False), c.replace("pm:none", b"z", noreply=False))
out("pm append/prepend", c.append("pm:b", b"1", noreply=False), c.prepend("pm:b", b"0", noreply=False), c.get("pm:b"))
out("pm incr/decr", c.set("pm:n", b"10", noreply=False), c.incr("pm:n", 5), c.decr("pm:n", 100), c.incr("pm:missing", 1))
value, cas = c.gets("pm:a")
out("pm gets", value, cas is not None)
out("pm cas", c.cas("pm:a", b"new", cas, noreply=False), c.cas("pm:a", b"newer", cas, noreply=False), c.get("pm:a"))
keys = ["pm:multi:%d" % i for i in range(300)]
out("pm set_many failed", c.set_many({k: k.encode() for k in keys}, noreply=False))
got = c.get_many(keys + ["pm:absent"])
out("pm get_many", len(got), all(got[k] == k.encode() for k in keys))
out("pm touch", c.touch("pm:a", 100, noreply=False), c.touch("pm:none", 1, noreply=False))
big = bytes(range(256)) * 2000
out("pm big", c.set("pm:big", big, noreply=False), c.get("pm:big") == big)
out("pm noreply", c.set("pm:nr", b"v", noreply=True), c.get("pm:nr"))
out("pm delete", c.delete("pm:a", noreply=False), c.delete("pm:a", noreply=False))
out("pm delete_many", c.delete_many(keys[:10], noreply=False), c.get_many(keys[:10]))
out("pm version", bool(c.version()))
stats = c.stats()
out("pm stats", b"curr_connections" in stats or "curr_connections" in stats)
out("pm flush again", c.flush_all(noreply=False), c.get("pm:b"))
c.close()

# --- python-memcached -----------------------------------------------------
m = memcache.Client(["%s:%d" % (host, port)], cache_cas=True, socket_timeout=5)
out("py set/get", m.set("py:a", "hello"), m.get("py:a"))
out("py int", m.set("py:i", 42), m.get("py:i"))
out("py object", m.set("py:d", {"x": [1, 2]}), m.get("py:d"))
multi = {"py:m%d" % i: i for i in range(200)}
out("py set_multi failed", m.set_multi(multi))
got = m.get_multi(list(multi) + ["py:absent"])
out("py get_multi", len(got), got == multi)
out("py incr/decr", m.incr("py:i", 3), m.decr("py:i", 50), m.incr("py:absent"))
out("py add/replace", m.add("py:a", "x"), m.add("py:b", "y"), m.replace("py:b", "z"), m.replace("py:none", "z"))
out("py append/prepend", m.append("py:b", "1"), m.prepend("py:b", "0"), m.get("py:b"))
out("py gets/cas", m.gets("py:a"), m.cas("py:a", "casval"), m.get("py:a"))
out("py touch", m.touch("py:a", 100))
out("py delete", m.delete("py:a"), m.get("py:a"))
out("py unicode", m.set("py:u", "h\u00e9llo \u2603"), m.get("py:u"))
out("py flush", m.flush_all(), m.get("py:b"))
m.disconnect_all()

print("\n".join(lines))
