// A Node ccxt bot, unchanged but for its URLs: it trades through `venueguard proxy`.
// Usage: node ccxt_bot.cjs CCXT_DIR PROXY_URL EXCHANGE API_KEY SECRET [FAULTS_JSON]
// Prints one JSON line with what it saw. With FAULTS_JSON (a list of [kind, params]), it posts
// each fault in turn to PROXY_URL's control API (/_sim/faults), notes what it saw, and clears
// the fault: for a REST fault, the ccxt error class of one createOrder (or "ok"); for a websocket
// fault (ws_*), what watchOrderBook gives for 1.5 s on a fresh connection: the ccxt error
// class, "silent" (no update), or "updates" with the book's time (fresh, stale, future),
// "after reconnecting" when ccxt opened a new connection meanwhile.
"use strict";
const path = require("path");
const { createRequire } = require("module");

const [ccxtDir, proxyUrl, exchangeId, apiKey, secret, faultsJson] = process.argv.slice(2);
const ccxt = createRequire(path.join(ccxtDir, "bot.js"))("ccxt");
const wsUrl = proxyUrl.replace("http://", "ws://");

function pointAt(exchange) {
  const api = { ...exchange.urls.api };
  if (exchangeId === "bitmex") {
    Object.assign(api, { public: proxyUrl, private: proxyUrl, ws: wsUrl + "/realtime" });
  } else {
    for (const [version, suffix] of [["v1", ""], ["v2", "V2"], ["v3", "V3"]]) {
      api["fapiPublic" + suffix] = `${proxyUrl}/fapi/${version}`;
      api["fapiPrivate" + suffix] = `${proxyUrl}/fapi/${version}`;
    }
    api.ws = { ...api.ws, future: wsUrl + "/ws" };
    exchange.options.fetchCurrencies = false;
    exchange.options.fetchMargins = false;
  }
  exchange.urls.api = api;
}

async function control(method, body) {
  const resp = await fetch(`${proxyUrl}/_sim/faults`, {
    method, body: body === undefined ? undefined : JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });
  if (resp.status !== 200) throw new Error(`control ${method}: ${resp.status}`);
}

async function bookUnderFault(symbol, kind, params) {
  const exchange = new ccxt.pro[exchangeId]({ apiKey, secret });
  pointAt(exchange);
  await exchange.loadHttpProxyAgent();
  try {
    for (let i = 0; i < 3; i++) await exchange.watchOrderBook(symbol);
    const connections = new Set(Object.values(exchange.clients));
    await control("POST", { kind, ...params });
    let updates = 0;
    let ageS = 0;
    const end = Date.now() + 1500;
    try {
      while (Date.now() < end) {
        let timer;
        const timeout = new Promise((resolve) => {
          timer = setTimeout(resolve, Math.max(1, end - Date.now()), null);
        });
        const book = await Promise.race([exchange.watchOrderBook(symbol), timeout]);
        clearTimeout(timer);
        if (book === null) break;
        updates += 1;
        ageS = (Date.now() - book.timestamp) / 1000;
      }
    } catch (err) {
      if (!(err instanceof ccxt.BaseError)) throw err;
      return err.constructor.name;
    }
    let seen = updates === 0 ? "silent"
      : "updates " + (ageS > 20 ? "stale" : ageS < -20 ? "future" : "fresh");
    if (Object.values(exchange.clients).some((c) => !connections.has(c))) {
      seen += " after reconnecting";
    }
    return seen;
  } finally {
    await control("DELETE");
    // what the book showed is settled: drop the sockets rather than wait for a close
    // handshake that a half-open connection never answers (ccxt would wait 30 s)
    for (const client of Object.values(exchange.clients)) client.connection?.terminate?.();
    await exchange.close();
  }
}

async function faults(exchange, symbol, amount, price) {
  const seen = {};
  await exchange.loadMarkets();
  for (const [kind, params] of JSON.parse(faultsJson)) {
    if (kind.startsWith("ws_")) {
      seen[kind] = await bookUnderFault(symbol, kind, params);
      continue;
    }
    await control("POST", { kind, duration_s: 30, ...params });
    try {
      await exchange.createOrder(symbol, "limit", "buy", amount, price);
      seen[kind] = "ok";
    } catch (err) {
      if (!(err instanceof ccxt.BaseError)) throw err;
      seen[kind] = err.constructor.name;
    }
    await control("DELETE");
  }
  return seen;
}

async function main() {
  const exchange = new ccxt.pro[exchangeId]({ apiKey, secret });
  pointAt(exchange);
  // ccxt's Node websocket client refuses a plain ws:// URL until its http agent is loaded
  await exchange.loadHttpProxyAgent();
  const symbol = exchangeId === "bitmex" ? "BTC/USD:BTC" : "BTC/USDT:USDT";
  const amount = exchangeId === "bitmex" ? 100 : 0.01;
  const out = { version: ccxt.version };
  if (faultsJson !== undefined) {
    exchange.timeout = 5000;
    const price = exchangeId === "bitmex" ? 1000 : 45000;
    try {
      out.faults = await faults(exchange, symbol, amount, price);
    } finally {
      await exchange.close();
    }
    console.log(JSON.stringify(out));
    return;
  }
  try {
    const markets = await exchange.loadMarkets();
    out.market = markets[symbol].id;
    const book = await exchange.fetchOrderBook(symbol);
    out.bestBid = book.bids[0][0];
    out.bestAsk = book.asks[0][0];
    const order = await exchange.createOrder(symbol, "limit", "buy", amount, out.bestBid - 500);
    out.created = order.status;
    const canceled = await exchange.cancelOrder(order.id, symbol);
    out.canceled = canceled.status;
    let watched = 0;
    let last = null;
    for (let i = 0; i < 5; i++) {
      last = await exchange.watchOrderBook(symbol);
      watched += 1;
    }
    out.watched = watched;
    out.watchedBidBelowAsk = last.bids[0][0] < last.asks[0][0];
  } finally {
    await exchange.close();
  }
  console.log(JSON.stringify(out));
}

main().catch((err) => {
  console.log(JSON.stringify({ error: `${err.constructor.name}: ${err.message}` }));
  process.exit(1);
});
