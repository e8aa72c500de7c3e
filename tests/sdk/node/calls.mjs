// Every Detect call of Resemble's official Node SDK (@resemble/node, pinned in package.json),
// against the server at `base`; driven by tests/e2e/test_sdks.py.
//
//   node calls.mjs '{"base": "http://127.0.0.1:PORT/api/", "token": "...", "mediaUrl": "...",
//                    "upload": "/path/to/file.wav", "options": {...}, "pollWait": 0.2,
//                    "pollRetries": 50}'
//
// Prints one JSON document: {"calls": {name: what the SDK returned}, "exchanges": [every HTTP
// exchange: method, url, status, the request's authorization / prefer / content-type, the
// response's content-type and JSON body]}. The exchanges are recorded by wrapping the global
// fetch, which the SDK calls (it changes nothing the SDK sends or receives), so the test can check
// each response against Resemble's published schema. Only the base URL differs from a user's
// program. The SDK never throws (failures come back as {success: false}); an unexpected
// exception exits 1.
const realFetch = globalThis.fetch
const exchanges = []
globalThis.fetch = async (input, init = {}) => {
  const response = await realFetch(input, init)
  const sent = new Headers(init.headers ?? {})
  const text = await response.clone().text()
  let body
  try {
    body = JSON.parse(text)
  } catch {
    body = text
  }
  exchanges.push({
    method: init.method ?? 'GET',
    url: String(input),
    status: response.status,
    authorization: sent.get('authorization'),
    prefer: sent.get('prefer'),
    request_content_type: sent.get('content-type'),
    content_type: response.headers.get('content-type'),
    body,
  })
  return response
}

const { Resemble } = await import('@resemble/node')

const config = JSON.parse(process.argv[2])
const { base, token, mediaUrl, upload, options } = config
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

Resemble.setApiKey(token)
Resemble.setBaseUrl(base)
const detection = Resemble.v2.detection
const calls = {}

calls.secure_upload = await detection.secureUpload(upload)
calls.detect_url = await detection.create({ url: mediaUrl })
calls.detect_url_sync_all_options = await detection.createSync({
  url: mediaUrl,
  ...options,
  zero_retention_mode: true,
})
calls.detect_file = await detection.create({ file: upload })
calls.detect_file_sync = await detection.createSync({ file: upload, ...options })
calls.detect_and_get_url = await detection.detectAndGet(
  { url: mediaUrl },
  config.pollRetries,
  config.pollWait,
)
calls.detect_and_get_file = await detection.detectAndGet(
  { file: upload },
  config.pollRetries,
  config.pollWait,
)
// get: the async URL detect, until it is done (what a user's own polling loop does)
const uuid = calls.detect_url?.item?.uuid
for (let i = 0; i < config.pollRetries; i++) {
  calls.get = await detection.get(uuid)
  if (calls.get?.item?.status !== 'processing') break
  await sleep(config.pollWait * 1000)
}
Resemble.setApiKey(`${token}-wrong`)
calls.get_bad_key = await detection.get(uuid)

process.stdout.write(JSON.stringify({ calls, exchanges }))
