/** SCIM protocol errors (RFC 7644 §3.12): `{"schemas":[…Error], "status":"400", "scimType", "detail"}`. */
export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

export type ScimType =
  | 'invalidFilter'
  | 'tooMany'
  | 'uniqueness'
  | 'mutability'
  | 'invalidSyntax'
  | 'invalidPath'
  | 'noTarget'
  | 'invalidValue'
  | 'invalidVers'
  | 'sensitive';

export class ScimError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly scimType?: ScimType,
  ) {
    super(message);
    this.name = 'ScimError';
  }
}

export const invalidFilter = (m: string) => new ScimError(400, m, 'invalidFilter');
export const invalidValue = (m: string) => new ScimError(400, m, 'invalidValue');
export const invalidSyntax = (m: string) => new ScimError(400, m, 'invalidSyntax');
export const invalidPath = (m: string) => new ScimError(400, m, 'invalidPath');
export const noTarget = (m: string) => new ScimError(400, m, 'noTarget');
export const uniqueness = (m: string) => new ScimError(409, m, 'uniqueness');
export const mutability = (m: string) => new ScimError(400, m, 'mutability');
export const scimNotFound = (what: string) => new ScimError(404, `${what} not found`);

export function scimErrorBody(status: number, detail: string, scimType?: string) {
  return { schemas: [ERROR_SCHEMA], status: String(status), ...(scimType ? { scimType } : {}), detail };
}
