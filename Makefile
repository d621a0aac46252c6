# Everyday commands.
.PHONY: check test bench run fmt

check:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test:
	cargo test --workspace

bench:
	cargo run --release -- bench --duration 2h --underlyings 20

run:
	cargo run --release -- run

fmt:
	cargo fmt --all
