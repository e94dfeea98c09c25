// config: the schema of every module's settings, TOML loading, env overrides, validation. Composition level: may import any module.
// Public API: loadConfig, validate, SCHEMA, M1Config, fields, envName, exampleToml, configTableRows, expandPath.
export { SCHEMA, ARRAY_SCHEMA, validate, fields, envName, camel, type M1Config, type UpstreamConfig, type Field } from './schema.js'
export { loadConfig, parseTomlText, expandPath, type LoadOptions } from './load.js'
export { exampleToml, configTableRows, arrayTableRows, tomlValue } from './docs.js'
