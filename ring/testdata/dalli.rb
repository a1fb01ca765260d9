# Writes keys through Dalli, so that Dalli's ring places them
# (ring/compat_clients_test.go).
# Usage: ruby dalli.rb KEYFILE HOST:PORT:WEIGHT...
# KEYFILE holds one hex-encoded key a line. Prints "stored N".
require 'dalli'

keyfile, *servers = ARGV
dc = Dalli::Client.new(servers, compress: false, failover: false, socket_timeout: 5)
n = 0
File.foreach(keyfile) do |line|
  key = [line.strip].pack('H*')
  unless dc.set(key, 'v', 0, raw: true)
    warn "set #{line.strip}: not stored"
    exit 1
  end
  n += 1
end
puts "stored #{n}"
