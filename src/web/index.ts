// web: the node's HTTP server (/health, /metrics, control API). Composition level: may import any module's types.
// Public API: WebServer, WebInit, WebComponents.
export { WebServer, type WebInit, type WebComponents } from './server.js'
