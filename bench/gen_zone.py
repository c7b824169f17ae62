#!/usr/bin/env python3
"""Generate a large test zone: N records, 70% A, 20% AAAA, 10% TXT, fixed seed.

usage: gen_zone.py N OUT.zone [ORIGIN]
"""
import random
import sys


def main():
    n = int(sys.argv[1])
    out = sys.argv[2]
    origin = sys.argv[3] if len(sys.argv) > 3 else "big.example."
    rnd = random.Random(20261130)
    with open(out, "w") as f:
        f.write(f"$ORIGIN {origin}\n$TTL 3600\n")
        f.write("@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n")
        for i in range(n):
            r = rnd.random()
            if r < 0.7:
                f.write(f"h{i} A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n")
            elif r < 0.9:
                f.write(f"h{i} AAAA 2001:db8::{(i >> 16) & 0xffff:x}:{i & 0xffff:x}\n")
            else:
                f.write(f'h{i} TXT "v=spf1 ip4:10.0.0.{i & 255} -all"\n')


if __name__ == "__main__":
    main()
