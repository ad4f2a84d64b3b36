// A DPoP client we did not write: oauth4webapi (npm), run by tests/e2e/test_resource_server_kit.py.
// Discovery, a DPoP-bound client_credentials token (retrying once on use_dpop_nonce, as the
// library's documentation shows), then one API call with a DPoP proof. Prints one JSON line.
import * as oauth from 'oauth4webapi'

const { ISSUER, CLIENT_ID, CLIENT_SECRET, SCOPE, API_URL } = process.env
const insecure = { [oauth.allowInsecureRequests]: true } // the test servers speak plain HTTP
const issuer = new URL(ISSUER)
const as = await oauth
  .discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure })
  .then((response) => oauth.processDiscoveryResponse(issuer, response))
const client = { client_id: CLIENT_ID }
const auth = oauth.ClientSecretBasic(CLIENT_SECRET)
const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))

async function token() {
  const response = await oauth.clientCredentialsGrantRequest(
    as, client, auth, new URLSearchParams({ scope: SCOPE }), { DPoP, ...insecure })
  return oauth.processClientCredentialsResponse(as, client, response)
}

let result
try {
  result = await token()
} catch (error) {
  if (!oauth.isDPoPNonceError(error)) throw error
  result = await token()
}
const api = await oauth.protectedResourceRequest(
  result.access_token, 'GET', new URL(API_URL), new Headers(), null, { DPoP, ...insecure })
console.log(JSON.stringify({
  token_type: result.token_type,
  access_token: result.access_token,
  api_status: api.status,
  api_body: await api.json(),
  dpop_algs: as.dpop_signing_alg_values_supported,
}))
