// m1node: public surface for embedding and tests.
// Public API: M1Node (composition root), loadConfig/validate, config types.
export { M1Node, type NodeOptions, type NodeInfo } from './node.js'
export { loadConfig, validate, type M1Config } from './config/index.js'
export { VERSION } from './version.js'
