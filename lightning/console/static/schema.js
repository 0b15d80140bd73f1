// The JSON Schema checks of lightning/domain/tool_schema.py, in the browser, so the arguments editor
// can say what is wrong before saving. The server checks again: this is a convenience, not a guard.

function isKind(value, kind) {
  switch (kind) {
    case 'object': return value !== null && typeof value === 'object' && !Array.isArray(value);
    case 'array': return Array.isArray(value);
    case 'string': return typeof value === 'string';
    case 'boolean': return typeof value === 'boolean';
    case 'integer': return typeof value === 'number' && Number.isInteger(value);
    case 'number': return typeof value === 'number' && Number.isFinite(value);
    case 'null': return value === null;
    default: return true;
  }
}

function typeName(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Every way `value` breaks `schema`, as short phrases naming the path (empty: valid). */
export function schemaProblems(value, schema, path = 'arguments') {
  const problems = [];
  if (!schema || typeof schema !== 'object') return problems;
  if (schema.type !== undefined) {
    const kinds = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!kinds.some((kind) => isKind(value, kind))) {
      return [`${path} must be ${kinds.join(' or ')}, got ${typeName(value)} ${JSON.stringify(value)}`];
    }
  }
  if ('const' in schema && !same(value, schema.const)) problems.push(`${path} must be ${JSON.stringify(schema.const)}`);
  if (Array.isArray(schema.enum) && !schema.enum.some((option) => same(option, value))) {
    problems.push(`${path} must be one of ${schema.enum.map((o) => JSON.stringify(o)).join(', ')}, got ${JSON.stringify(value)}`);
  }
  if (typeof value === 'number') {
    if ('minimum' in schema && value < schema.minimum) problems.push(`${path} must be >= ${schema.minimum}, got ${value}`);
    if ('maximum' in schema && value > schema.maximum) problems.push(`${path} must be <= ${schema.maximum}, got ${value}`);
    if ('exclusiveMinimum' in schema && value <= schema.exclusiveMinimum) problems.push(`${path} must be > ${schema.exclusiveMinimum}, got ${value}`);
    if ('exclusiveMaximum' in schema && value >= schema.exclusiveMaximum) problems.push(`${path} must be < ${schema.exclusiveMaximum}, got ${value}`);
  }
  if (typeof value === 'string') {
    if ('minLength' in schema && value.length < schema.minLength) problems.push(`${path} must have at least ${schema.minLength} characters`);
    if ('maxLength' in schema && value.length > schema.maxLength) problems.push(`${path} must have at most ${schema.maxLength} characters`);
    if ('pattern' in schema) {
      let matches = true;
      try { matches = new RegExp(schema.pattern, 'u').test(value); } catch { matches = true; }
      if (!matches) problems.push(`${path} must match ${JSON.stringify(schema.pattern)}`);
    }
  }
  if (Array.isArray(value)) {
    if ('minItems' in schema && value.length < schema.minItems) problems.push(`${path} must have at least ${schema.minItems} items`);
    if ('maxItems' in schema && value.length > schema.maxItems) problems.push(`${path} must have at most ${schema.maxItems} items`);
    if (schema.items && typeof schema.items === 'object' && !Array.isArray(schema.items)) {
      value.forEach((item, index) => problems.push(...schemaProblems(item, schema.items, `${path}[${index}]`)));
    }
  }
  if (isKind(value, 'object')) {
    const properties = schema.properties || {};
    for (const name of schema.required || []) {
      if (!(name in value)) problems.push(`${path}.${name} is required`);
    }
    const extra = schema.additionalProperties === undefined ? true : schema.additionalProperties;
    for (const [name, item] of Object.entries(value)) {
      if (name in properties) problems.push(...schemaProblems(item, properties[name], `${path}.${name}`));
      else if (extra === false) problems.push(`${path}.${name} is not a parameter of this tool`);
      else if (extra && typeof extra === 'object') problems.push(...schemaProblems(item, extra, `${path}.${name}`));
    }
  }
  return problems;
}

/** Problems of the arguments editor's text for a tool: not JSON, not an object, or off the schema. */
export function argumentProblems(text, tool) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return {value: undefined, problems: [`not JSON: ${error.message}`]};
  }
  if (!isKind(value, 'object')) return {value, problems: ['arguments must be a JSON object of the tool\'s arguments']};
  return {value, problems: tool ? schemaProblems(value, tool.parameters) : []};
}

/** A starting point for a tool's arguments: the agent's defaults, else a value of each required type. */
export function skeleton(tool) {
  const result = {};
  const properties = (tool.parameters && tool.parameters.properties) || {};
  for (const name of (tool.parameters && tool.parameters.required) || []) {
    if (tool.defaults && name in tool.defaults) { result[name] = tool.defaults[name]; continue; }
    const spec = properties[name] || {};
    if (Array.isArray(spec.enum) && spec.enum.length) result[name] = spec.enum[0];
    else if (spec.type === 'integer' || spec.type === 'number') result[name] = spec.minimum ?? 1;
    else if (spec.type === 'boolean') result[name] = false;
    else if (spec.type === 'array') result[name] = [];
    else result[name] = '';
  }
  return result;
}
