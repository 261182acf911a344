//! The node's chain and mempool as the wallet sees them (`wallet::ChainView`).

use crate::chain::{Chain, COINBASE_MATURITY};
use crate::mempool::{Mempool, RejectKind};
use crate::node::now_secs;
use crate::rpc::error::{RpcError, RPC_VERIFY_ALREADY_IN_CHAIN, RPC_VERIFY_ERROR, RPC_VERIFY_REJECTED};
use crate::wallet::{ChainView, WalletCoin};
use bitcoin::{FeeRate, OutPoint, Script, Transaction, TxOut, Txid};

pub struct NodeView<'a> {
    pub chain: &'a Chain,
    pub mempool: &'a mut Mempool,
    pub min_relay_fee: FeeRate,
}

impl ChainView for NodeView<'_> {
    fn tip_height(&self) -> u32 {
        self.chain.height()
    }

    fn unspent_matching(&self, is_mine: &dyn Fn(&Script) -> bool) -> Vec<WalletCoin> {
        let tip = self.chain.height();
        let mut coins: Vec<WalletCoin> = self
            .chain
            .utxos()
            .filter(|(op, c)| is_mine(&c.txout.script_pubkey) && self.mempool.spender(op).is_none())
            .map(|(op, c)| {
                let confirmations = tip - c.height + 1;
                WalletCoin {
                    outpoint: *op,
                    txout: c.txout.clone(),
                    confirmations,
                    is_coinbase: c.is_coinbase,
                    // Core's wallet waits one block longer than consensus (GetBlocksToMaturity).
                    mature: !c.is_coinbase || confirmations > COINBASE_MATURITY,
                    trusted: true,
                }
            })
            .collect();
        for entry in self.mempool.ordered() {
            let trusted = entry.spent.iter().all(|o| is_mine(&o.script_pubkey));
            for (vout, out) in entry.tx.output.iter().enumerate() {
                let outpoint = OutPoint::new(entry.txid, vout as u32);
                if is_mine(&out.script_pubkey) && self.mempool.spender(&outpoint).is_none() {
                    coins.push(WalletCoin {
                        outpoint,
                        txout: out.clone(),
                        confirmations: 0,
                        is_coinbase: false,
                        mature: true,
                        trusted,
                    });
                }
            }
        }
        coins.sort_by_key(|c| (c.outpoint.txid, c.outpoint.vout));
        coins
    }

    fn get_unspent(&self, outpoint: &OutPoint) -> Option<TxOut> {
        if self.mempool.spender(outpoint).is_some() {
            return None;
        }
        self.chain.utxo(outpoint).map(|c| c.txout.clone()).or_else(|| self.mempool.unspent_output(outpoint).cloned())
    }

    fn broadcast(&mut self, tx: &Transaction) -> Result<Txid, RpcError> {
        broadcast(self.chain, self.mempool, self.min_relay_fee, tx.clone())
    }
}

/// sendrawtransaction's semantics and error codes (Core's BroadcastTransaction).
pub fn broadcast(
    chain: &Chain,
    mempool: &mut Mempool,
    min_relay_fee: FeeRate,
    tx: Transaction,
) -> Result<Txid, RpcError> {
    let txid = tx.compute_txid();
    if mempool.get(&txid).is_some() {
        return Ok(txid);
    }
    match mempool.accept(chain, tx, min_relay_fee, now_secs()) {
        Ok(txid) => Ok(txid),
        Err(r) => Err(match r.kind {
            RejectKind::MissingInputs => RpcError::new(RPC_VERIFY_ERROR, r.reason),
            RejectKind::AlreadyConfirmed => {
                RpcError::new(RPC_VERIFY_ALREADY_IN_CHAIN, "Transaction outputs already in utxo set")
            }
            RejectKind::AlreadyInMempool => return Ok(txid),
            RejectKind::Invalid => RpcError::new(RPC_VERIFY_REJECTED, r.details()),
        }),
    }
}
