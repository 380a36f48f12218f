#!/usr/bin/env node
// Start kinesalite on 127.0.0.1 for the csgen test suite.
//
// The kinesalite CLI listens on every interface and prints a human sentence,
// so the tests start the emulator through its JavaScript API instead. Once
// the socket is bound, this script prints exactly one JSON line on stdout,
// {"port": N}, and nothing else: the Python harness reads that line to learn
// the port (port 0 asks the kernel for a free one).
//
// The process ends on SIGTERM, SIGINT, or when stdin reaches end-of-file. The
// last case covers a test runner that dies without stopping us: its end of
// the pipe closes and we do not outlive it.
//
// Usage: node kinesalite-server.js [--port N] [--path DIR]
//          [--createStreamMs MS] [--deleteStreamMs MS] [--updateStreamMs MS]
//          [--shardLimit N]
'use strict'

const { parseArgs } = require('node:util')

const HOST = '127.0.0.1'
// A close that hangs (a client holding a request open) must not keep the
// process alive; the Python side also kills after its own grace period.
const CLOSE_GRACE_MS = 2000

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '0' },
      path: { type: 'string' },
      createStreamMs: { type: 'string', default: '0' },
      deleteStreamMs: { type: 'string', default: '0' },
      updateStreamMs: { type: 'string', default: '0' },
      shardLimit: { type: 'string', default: '100' },
    },
    strict: true,
  })
  const numbers = {}
  for (const name of ['port', 'createStreamMs', 'deleteStreamMs', 'updateStreamMs', 'shardLimit']) {
    const value = Number(values[name])
    if (!Number.isInteger(value) || value < 0) {
      throw new Error(`--${name} must be a non-negative integer (got ${values[name]})`)
    }
    numbers[name] = value
  }
  return { ...numbers, path: values.path }
}

function main() {
  const options = parseOptions(process.argv.slice(2))
  const kinesalite = require('kinesalite')
  const server = kinesalite({
    path: options.path,
    createStreamMs: options.createStreamMs,
    deleteStreamMs: options.deleteStreamMs,
    updateStreamMs: options.updateStreamMs,
    shardLimit: options.shardLimit,
  })

  // A bind failure (port taken) is fatal: say so on stderr and exit non-zero
  // before any port line is printed, so the harness reports it.
  server.on('error', (err) => {
    process.stderr.write(`kinesalite-server: ${err.stack || err}\n`)
    process.exit(1)
  })

  server.listen(options.port, HOST, () => {
    process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n')
  })

  // Close the server (and with it the LevelDB store, flushing it to disk),
  // then exit. NB: a second trigger (SIGTERM and then stdin EOF) must not cut
  // the close short; a close that hangs is ended by the grace timer.
  let closing = false
  function shutdown() {
    if (closing) return
    closing = true
    setTimeout(() => process.exit(0), CLOSE_GRACE_MS).unref()
    server.close((err) => {
      if (err) process.stderr.write(`kinesalite-server: close failed: ${err}\n`)
      process.exit(err ? 1 : 0)
    })
    server.closeAllConnections()
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
  process.stdin.on('end', shutdown)
  process.stdin.on('error', shutdown)
  process.stdin.resume()
}

main()
