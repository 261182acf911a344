# The regtest node as a container (the seed's "bitcoindsim"). Build from the repository root:
#   docker build -f docker/regtest-node.Dockerfile -t regtest-node .
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake libboost-dev clang && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p regtest-node

FROM debian:bookworm-slim
COPY --from=build /src/target/release/regtest-node /usr/local/bin/regtest-node
EXPOSE 18443
VOLUME /data
ENTRYPOINT ["regtest-node", "-regtest", "-datadir=/data", "-rpcbind=0.0.0.0", "-rpcport=18443"]
CMD ["-rpcuser=demo", "-rpcpassword=demo", "-blockinterval=10", "-wallet=miner", "-fallbackfee=0.0002"]
