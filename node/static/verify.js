// In-browser verification of a TradeLedger inclusion proof bundle.
//
// A second implementation, in the browser's own WebCrypto, of the steps in
// client/verify.py (specs/protocol.md#verifying-a-proof-bundle):
//
// 1. Read the genesis file: its header hash is the chain's identity; the
//    validators' node keys and the quorum come from its founding transaction.
// 2. The bundle's chain id and genesis hash must be those of the genesis file.
// 3. The header must carry the chain id; its hash is SHA-256 of its canonical
//    form (flat strings and integers: sorted keys, no spaces).
// 4. The certificate must sign that hash with node keys of at least
//    `threshold` distinct validator organisations of the set in force: the
//    genesis set, advanced through the bundle's `validator_changes`, each
//    certified by the set before it (specs/protocol.md#validator-set-changes).
// 5. The leaf's RFC 9162 inclusion proof must lead to the header's log_root
//    at log_size.
// 6. The leaf's body hashes to the bundle's tx_id.
//
// The page embeds the bundle in <script type="application/json" id="bundle">
// and the genesis file in <script type="application/json" id="genesis">.
"use strict";

(function () {
  const BUNDLE_VERSION = "tradeledger-proof/1";
  const GENESIS_VERSION = "tradeledger-genesis/1";
  const encoder = new TextEncoder();
  const CHECKPOINT_DOMAIN = encoder.encode("tradeledger/v1/checkpoint\u0000");
  const STATE_DOMAIN = encoder.encode("tradeledger/v1/state\u0000");

  class BundleError extends Error {}

  // -- bytes and hashes ------------------------------------------------------

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  function toHex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function sameBytes(a, b) {
    return a.length === b.length && a.every((v, i) => v === b[i]);
  }

  function hexBytes(value, what, size) {
    if (typeof value !== "string" || value !== value.toLowerCase()) {
      throw new BundleError(`${what} must be lower-case hex`);
    }
    if (value.length % 2 !== 0 || !/^[0-9a-f]*$/.test(value)) {
      throw new BundleError(`${what} is not hex`);
    }
    const out = new Uint8Array(value.length / 2);
    for (let i = 0; i < out.length; i++) {
      out[i] = parseInt(value.slice(2 * i, 2 * i + 2), 16);
    }
    if (size !== undefined && out.length !== size) {
      throw new BundleError(`${what} must be ${size} bytes, got ${out.length}`);
    }
    return out;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function isInt(value) {
    return typeof value === "number" && Number.isSafeInteger(value);
  }

  function member(obj, key, path) {
    if (!isObject(obj) || !Object.prototype.hasOwnProperty.call(obj, key)) {
      throw new BundleError(`${path} is missing`);
    }
    return obj[key];
  }

  // RFC 8785 for any JSON value: JSON.stringify gives ECMAScript numbers and
  // RFC 8785's string escapes, and Array.prototype.sort orders names by UTF-16
  // code units, as RFC 8785 section 3.2.3 requires.
  function canonical(value) {
    if (Array.isArray(value)) {
      return "[" + value.map(canonical).join(",") + "]";
    }
    if (isObject(value)) {
      return "{" + Object.keys(value).sort()
        .map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
    }
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new BundleError("numbers must be finite");
    }
    return JSON.stringify(value);
  }

  // RFC 8785 for a flat object of strings and integers (headers). For these
  // values JSON.stringify is the canonical form, and for ASCII names the
  // UTF-16 order of Array.prototype.sort is RFC 8785's order.
  function flatCanonical(obj) {
    if (!isObject(obj)) {
      throw new BundleError("header must be an object");
    }
    const names = Object.keys(obj);
    for (const name of names) {
      const value = obj[name];
      if (!/^[\x00-\x7f]*$/.test(name)) {
        throw new BundleError(`header member ${JSON.stringify(name)} is not an ASCII name`);
      }
      const okString = typeof value === "string" && value.isWellFormed();
      if (!okString && !isInt(value)) {
        throw new BundleError(
          `header member ${JSON.stringify(name)} must be a string or an integer`);
      }
    }
    names.sort();
    const members = names.map((n) => `${JSON.stringify(n)}:${JSON.stringify(obj[n])}`);
    return encoder.encode(`{${members.join(",")}}`);
  }

  async function keyId(publicKey) {
    return toHex((await sha256(publicKey)).slice(0, 16));
  }

  async function ed25519Verify(publicKey, signature, message) {
    let key;
    try {
      key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    } catch (err) {
      if (err && err.name === "NotSupportedError") {
        throw new BundleError("this browser's WebCrypto cannot check Ed25519 signatures");
      }
      return false; // not a valid public key: the signature does not count
    }
    return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  }

  // -- step 1: the trust anchor ----------------------------------------------

  async function loadAnchor(doc) {
    if (!isObject(doc) || doc.version !== GENESIS_VERSION) {
      throw new BundleError(`not a ${GENESIS_VERSION} file`);
    }
    let header, threshold;
    const nodeKeys = new Map(); // org -> Map(key id -> public key)
    try {
      header = member(doc, "header", "genesis.header");
      const tx = member(doc, "transaction", "genesis.transaction");
      const payload = member(member(tx, "body", "genesis.transaction.body"), "payload",
        "genesis.transaction.body.payload");
      const quorum = member(payload, "quorum", "quorum");
      const validators = member(quorum, "validators", "quorum.validators");
      threshold = member(quorum, "threshold", "quorum.threshold");
      if (!Array.isArray(validators) || !isInt(threshold) || threshold < 1) {
        throw new BundleError("quorum must list validators and a threshold of at least 1");
      }
      const orgs = new Map();
      const listed = member(payload, "organisations", "organisations");
      if (!Array.isArray(listed)) {
        throw new BundleError("organisations must be a list");
      }
      for (const org of listed) {
        orgs.set(member(org, "id", "organisation id"), org);
      }
      for (const v of validators) {
        const org = orgs.get(v);
        if (org === undefined) {
          throw new BundleError(`validator ${JSON.stringify(v)} is not an organisation`);
        }
        const keys = new Map();
        const hexKeys = org.node_keys === undefined ? [] : org.node_keys;
        if (!Array.isArray(hexKeys)) {
          throw new BundleError(`node_keys of ${v} must be a list`);
        }
        for (const hex of hexKeys) {
          const raw = hexBytes(typeof hex === "string" ? hex.toLowerCase() : hex, "node key");
          keys.set(await keyId(raw), raw);
        }
        nodeKeys.set(v, keys);
      }
    } catch (err) {
      if (err instanceof BundleError || err instanceof TypeError) {
        throw new BundleError(`genesis file is malformed: ${err.message}`);
      }
      throw err;
    }
    if (!isObject(header) || header.height !== 0) {
      throw new BundleError("genesis header must be at height 0");
    }
    // The header commits to the founding transaction (a one-leaf log), so the
    // validator keys read from it are covered by the genesis hash.
    const tx = doc.transaction;
    const leaf = '{"body":' + canonical(tx.body) + ',"signatures":' +
      canonical(tx.signatures) + "}";
    const leafHash = await sha256(concat(new Uint8Array([0]), encoder.encode(leaf)));
    if (header.log_size !== 1 ||
        !sameBytes(hexBytes(header.log_root, "genesis log_root", 32), leafHash)) {
      throw new BundleError("genesis header does not commit to its transaction");
    }
    return {
      chainId: header.chain_id,
      genesisHash: await sha256(flatCanonical(header)),
      nodeKeys,
      threshold,
    };
  }

  // -- steps 3 and 4: header and certificate ---------------------------------

  async function verifyHeader(anchor, header, certificate) {
    if (!isObject(header) || header.chain_id !== anchor.chainId) {
      throw new BundleError("header is for another chain");
    }
    const headerHash = await sha256(flatCanonical(header));
    if (header.height === 0) {
      if (!sameBytes(headerHash, anchor.genesisHash)) {
        throw new BundleError("height-0 header is not the genesis header");
      }
      return { headerHash, signedBy: ["genesis"] };
    }
    if (!isObject(certificate)) {
      throw new BundleError("certificate is missing");
    }
    if (certificate.height !== header.height) {
      throw new BundleError("certificate is for another height");
    }
    const blockHash = hexBytes(certificate.block_hash, "certificate.block_hash", 32);
    if (!sameBytes(blockHash, headerHash)) {
      throw new BundleError("certificate signs a different block hash than the header's");
    }
    const signatures = certificate.signatures === undefined ? [] : certificate.signatures;
    if (!Array.isArray(signatures)) {
      throw new BundleError("bundle is malformed: certificate.signatures must be a list");
    }
    const message = concat(CHECKPOINT_DOMAIN, headerHash);
    const signedBy = [];
    for (const sig of signatures) {
      if (!isObject(sig)) {
        throw new BundleError("bundle is malformed: a certificate signature is not an object");
      }
      const keys = anchor.nodeKeys.get(sig.org);
      const publicKey = keys === undefined ? undefined : keys.get(sig.key_id);
      if (publicKey === undefined || signedBy.includes(sig.org)) {
        continue;
      }
      const raw = hexBytes(sig.signature, "certificate signature", 64);
      if (await ed25519Verify(publicKey, raw, message)) {
        signedBy.push(sig.org);
      }
    }
    if (signedBy.length < anchor.threshold) {
      throw new BundleError(`certificate signed by ${signedBy.length}/${anchor.threshold} ` +
        "required validator organisations");
    }
    return { headerHash, signedBy };
  }

  // -- step 4: following validator-set changes --------------------------------

  // canonical([[key, value], ...]) of a block's changes, each value given as
  // its canonical JSON text; keys printable ASCII, strictly increasing.
  function changesBytes(changes, where) {
    if (!Array.isArray(changes)) {
      throw new BundleError(`${where}.changes must be a list`);
    }
    const parts = [];
    const found = new Map();
    let last = null;
    changes.forEach((item, i) => {
      if (!Array.isArray(item) || item.length !== 2) {
        throw new BundleError(`${where}.changes[${i}] must be [key, value]`);
      }
      const [key, value] = item;
      if (typeof key !== "string" || !/^[\x20-\x7e]+$/.test(key) || /["\\]/.test(key)) {
        throw new BundleError(`${where}.changes[${i}]: key must be printable ASCII`);
      }
      if (last !== null && !(key > last)) {
        throw new BundleError(`${where}.changes must be sorted by key, each key once`);
      }
      if (value !== null && typeof value !== "string") {
        throw new BundleError(`${where}.changes[${i}]: value must be JSON text or null`);
      }
      last = key;
      found.set(key, value);
      parts.push(`["${key}",${value === null ? "null" : value}]`);
    });
    return { data: encoder.encode(`[${parts.join(",")}]`), found };
  }

  async function validatorRecord(anchor, text, epoch, height, where) {
    let record;
    try {
      record = JSON.parse(text);
    } catch (err) {
      throw new BundleError(`${where}: validators record is malformed: ${err.message}`);
    }
    if (!isObject(record) || record.epoch !== epoch || record.height !== height) {
      throw new BundleError(`${where}: validators record is not epoch ${epoch} at ${height}`);
    }
    const nodeKeys = new Map();
    if (!isObject(record.validators)) {
      throw new BundleError(`${where}: validators record is malformed`);
    }
    for (const [org, keys] of Object.entries(record.validators)) {
      if (!isObject(keys)) {
        throw new BundleError(`${where}: validators record is malformed`);
      }
      const map = new Map();
      for (const [kid, hex] of Object.entries(keys)) {
        const raw = hexBytes(hex, `${where}: node key`, 32);
        if (await keyId(raw) !== kid) {
          throw new BundleError(`${where}: key id ${kid} is not its key's id`);
        }
        map.set(kid, raw);
      }
      nodeKeys.set(org, map);
    }
    if (!isInt(record.threshold) || record.threshold < 1 ||
        record.threshold > nodeKeys.size) {
      throw new BundleError(`${where}: validators threshold is out of range`);
    }
    return { chainId: anchor.chainId, genesisHash: anchor.genesisHash, nodeKeys,
      threshold: record.threshold };
  }

  // Returns {anchor, epoch}: the set in force at headHeight.
  async function followValidatorChanges(anchor, changes, headHeight) {
    if (changes === undefined) {
      return { anchor, epoch: 0 };
    }
    if (!Array.isArray(changes)) {
      throw new BundleError("validator_changes must be a list");
    }
    let current = anchor;
    let epoch = 0;
    let last = 0;
    for (let i = 0; i < changes.length; i++) {
      const where = `validator_changes[${i}]`;
      const entry = changes[i];
      const names = isObject(entry) ? Object.keys(entry).sort().join(",") : "";
      if (names !== "certificate,changes,header,prev_header") {
        throw new BundleError(`${where} must have header, certificate, prev_header, changes`);
      }
      const { header, prev_header: prev } = entry;
      if (!isObject(header) || !isObject(prev)) {
        throw new BundleError(`${where}: headers must be objects`);
      }
      const height = header.height;
      if (!isInt(height) || !(last < height && height < headHeight)) {
        throw new BundleError(`${where}: changes must run in increasing heights below the ` +
          `certified head ${headHeight}`);
      }
      try {
        await verifyHeader(current, header, entry.certificate);
      } catch (err) {
        if (err instanceof BundleError) {
          throw new BundleError(`${where}: ${err.message}`);
        }
        throw err;
      }
      if (prev.chain_id !== anchor.chainId || prev.height !== height - 1) {
        throw new BundleError(`${where}: prev_header is not the block before`);
      }
      if (!sameBytes(await sha256(flatCanonical(prev)),
        hexBytes(header.prev_hash, `${where}.header.prev_hash`, 32))) {
        throw new BundleError(`${where}: header does not link to prev_header`);
      }
      const { data, found } = changesBytes(entry.changes, where);
      const root = await sha256(concat(STATE_DOMAIN,
        hexBytes(prev.state_root, `${where}.prev_header.state_root`, 32), await sha256(data)));
      if (!sameBytes(root, hexBytes(header.state_root, `${where}.header.state_root`, 32))) {
        throw new BundleError(`${where}: state changes do not lead to the header's state_root`);
      }
      const text = found.get("validators");
      if (text === undefined || text === null) {
        throw new BundleError(`${where}: the block does not change the validator set`);
      }
      current = await validatorRecord(anchor, text, epoch + 1, height, where);
      epoch += 1;
      last = height;
    }
    return { anchor: current, epoch };
  }

  // -- step 5: RFC 9162 section 2.1.3.2 --------------------------------------

  async function nodeHash(left, right) {
    return sha256(concat(Uint8Array.of(1), left, right));
  }

  async function rootFromInclusion(leafHash, index, size, proof) {
    if (!(index >= 0 && index < size)) {
      throw new BundleError(`leaf index ${index} is outside a log of size ${size}`);
    }
    // BigInt: the bit operations must not wrap at 32 bits.
    let fn = BigInt(index);
    let sn = BigInt(size - 1);
    let r = leafHash;
    for (const p of proof) {
      if (sn === 0n) {
        throw new BundleError("inclusion proof has extra hashes");
      }
      if ((fn & 1n) === 1n || fn === sn) {
        r = await nodeHash(p, r);
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) {
            fn >>= 1n;
            sn >>= 1n;
          }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    if (sn !== 0n) {
      throw new BundleError("inclusion proof is too short");
    }
    return r;
  }

  // -- all steps -------------------------------------------------------------

  // Returns {txId, height, leafIndex, logSize, certifiedHeight, signedBy, body};
  // throws BundleError naming the failed step. `step(text)` reports progress.
  async function verifyInclusionBundle(genesisDoc, bundle, step) {
    const report = step || (() => {});
    const anchor = await loadAnchor(genesisDoc);
    report(`Genesis file read: chain ${anchor.chainId}, ` +
      `genesis hash ${toHex(anchor.genesisHash)}, ` +
      `${anchor.threshold} of ${anchor.nodeKeys.size} validator organisation(s) must sign.`);
    try {
      if (!isObject(bundle) || bundle.version !== BUNDLE_VERSION || bundle.kind !== "inclusion") {
        throw new BundleError(`not a ${BUNDLE_VERSION} inclusion bundle`);
      }
      if (bundle.chain_id !== anchor.chainId) {
        throw new BundleError("bundle is for another chain");
      }
      if (!sameBytes(hexBytes(bundle.genesis_hash, "genesis_hash", 32), anchor.genesisHash)) {
        throw new BundleError("bundle names another genesis");
      }
      report("The bundle names this chain and this genesis.");
      const header = member(bundle, "header", "header");
      let inForce = anchor;
      if (bundle.validator_changes !== undefined) {
        if (!isObject(header) || !isInt(header.height)) {
          throw new BundleError("header.height must be a non-negative integer");
        }
        const followed = await followValidatorChanges(anchor, bundle.validator_changes,
          header.height);
        inForce = followed.anchor;
        report(`Validator set followed through ${followed.epoch} certified change(s): ` +
          `${inForce.threshold} of ${inForce.nodeKeys.size} organisation(s) must sign.`);
      }
      const { headerHash, signedBy } = await verifyHeader(inForce, header,
        bundle.certificate === undefined ? {} : bundle.certificate);
      report(`Header at height ${header.height} hashes to ${toHex(headerHash)}.`);
      report(`Certificate signed by ${signedBy.join(", ")} ` +
        `(${inForce.threshold} required).`);
      const leaf = member(bundle, "leaf", "leaf");
      if (typeof leaf !== "string" || !leaf.isWellFormed()) {
        throw new BundleError("leaf must be a string");
      }
      const leafBytes = encoder.encode(leaf);
      const index = member(bundle, "leaf_index", "leaf_index");
      const size = member(header, "log_size", "header.log_size");
      if (!isInt(index) || !isInt(size)) {
        throw new BundleError("leaf_index and log_size must be integers");
      }
      const path = member(bundle, "inclusion_proof", "inclusion_proof");
      if (!Array.isArray(path)) {
        throw new BundleError("inclusion_proof must be a list");
      }
      const proof = path.map((h) => hexBytes(h, "inclusion_proof entry", 32));
      const leafHash = await sha256(concat(Uint8Array.of(0), leafBytes));
      const computed = await rootFromInclusion(leafHash, index, size, proof);
      const logRoot = member(header, "log_root", "header.log_root");
      if (!sameBytes(computed, hexBytes(logRoot, "header.log_root", 32))) {
        throw new BundleError(
          `root mismatch: header says ${logRoot}, proof gives ${toHex(computed)}`);
      }
      report(`Inclusion proof (${proof.length} hashes) leads from leaf ${index} to the ` +
        `certified log root of ${size} transactions.`);
      // The leaf is canonical {"body":B,"signatures":S}; S holds only hex
      // strings, so the last ',"signatures":' splits it exactly.
      const prefix = '{"body":';
      const marker = ',"signatures":';
      const cut = leaf.lastIndexOf(marker);
      if (!leaf.startsWith(prefix) || cut < 0 || !leaf.endsWith("}")) {
        throw new BundleError("leaf is not a transaction");
      }
      const bodyHash = toHex(await sha256(encoder.encode(leaf.slice(prefix.length, cut))));
      if (bodyHash !== bundle.tx_id) {
        throw new BundleError("tx_id is not the hash of the leaf's body");
      }
      report(`The leaf's body hashes to the transaction id ${bodyHash}.`);
      const parsed = JSON.parse(leaf);
      const height = member(bundle, "height", "height");
      if (!isInt(height)) {
        throw new BundleError("height must be an integer");
      }
      return {
        txId: bundle.tx_id,
        height,
        leafIndex: index,
        logSize: size,
        certifiedHeight: header.height,
        signedBy,
        body: member(parsed, "body", "leaf body"),
      };
    } catch (err) {
      if (err instanceof BundleError) {
        throw err;
      }
      if (err instanceof TypeError || err instanceof SyntaxError || err instanceof RangeError) {
        throw new BundleError(`bundle is malformed: ${err.message}`);
      }
      throw err;
    }
  }

  // -- the page --------------------------------------------------------------

  function readJson(id) {
    const el = document.getElementById(id);
    if (el === null) {
      throw new BundleError(`the page has no embedded ${id}`);
    }
    try {
      return JSON.parse(el.textContent);
    } catch (err) {
      throw new BundleError(`the embedded ${id} is not JSON: ${err.message}`);
    }
  }

  async function run(section, button, result, steps) {
    button.disabled = true;
    result.className = "verify-result checking";
    result.textContent = "Checking…";
    steps.replaceChildren();
    const step = (text) => {
      const li = document.createElement("li");
      li.textContent = text;
      steps.append(li);
    };
    try {
      if (!window.isSecureContext || !window.crypto || !window.crypto.subtle) {
        throw new BundleError("this page is not a secure context (use HTTPS or localhost), " +
          "so the browser's WebCrypto is unavailable");
      }
      const verified = await verifyInclusionBundle(readJson("genesis"), readJson("bundle"), step);
      const expected = section.dataset.txId;
      if (expected && verified.txId !== expected) {
        throw new BundleError(`the bundle proves transaction ${verified.txId}, ` +
          `not ${expected} shown on this page`);
      }
      result.className = "verify-result verified";
      result.textContent = `Verified: included at height ${verified.height}, certified by ` +
        `${verified.signedBy.join(", ")}`;
    } catch (err) {
      const reason = err instanceof BundleError ? err.message : `unexpected error: ${err}`;
      const li = document.createElement("li");
      li.className = "failed";
      li.textContent = `Failed: ${reason}`;
      steps.append(li);
      result.className = "verify-result not-verified";
      result.textContent = `NOT verified: ${reason}`;
    } finally {
      button.disabled = false;
    }
  }

  function init() {
    const section = document.getElementById("verify");
    const button = document.getElementById("verify-button");
    const result = document.getElementById("verify-result");
    const steps = document.getElementById("verify-steps");
    if (section && button && result && steps) {
      button.addEventListener("click", () => run(section, button, result, steps));
    }
  }

  window.TradeLedgerVerify = { verifyInclusionBundle, BundleError };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
