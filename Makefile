# Everyday commands.
.PHONY: check test bench bench-ab run fmt

check:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test:
	cargo test --workspace

bench:
	cargo run --release -- bench --duration 2h --underlyings 20

# Two builds' replays of one tape, alternated run by run (this host's speed drifts by ±15%
# within minutes, so only alternated runs compare), with each build's mean at the end:
#   make bench-ab A=/tmp/old/optionflow B=target/release/optionflow TAPE=t2h.avro N=5
N ?= 5
bench-ab:
	@runs=$$(mktemp); for i in $$(seq $(N)); do for b in $(A) $(B); do \
	  $$b bench --tape $(TAPE) --json 2>/dev/null | tail -n 1 | \
	    sed -e 's/.*"cores_busy":\([0-9.]*\).*"cpu_secs":\([0-9.]*\).*"quotes_per_sec":\([0-9.]*\).*/\3 \2 \1/' | \
	    awk -v b=$$b '{ printf "%s %.0f quotes/s, %.2f s CPU, %.2f cores busy\n", b, $$1, $$2, $$3 }'; \
	done; done | tee $$runs; \
	awk '{ q[$$1] += $$2; c[$$1] += $$4; n[$$1]++ } END { for (b in q) printf "mean %s: %.1fk quotes/s, %.2f s CPU (%d runs)\n", b, q[b] / n[b] / 1000, c[b] / n[b], n[b] }' $$runs; \
	rm -f $$runs

run:
	cargo run --release -- run

fmt:
	cargo fmt --all
