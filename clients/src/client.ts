// A minimal typed client over the generated operation types: what a front-end team writes
// once, so that `tsc` checks every use of an example operation against the schema.
import type {
  ParcelBeforeTransferQuery,
  ParcelBeforeTransferQueryVariables,
  ParcelDuesQuery,
} from "../generated/operations";

export interface GatewayOptions {
  url: string;
  apiKey?: string;
  // The case this call belongs to (X-Road-Issue), e.g. an inquiry number.
  issue?: string;
}

export interface GatewayError {
  message: string;
  extensions?: { code?: string; field?: string; requestId?: string };
}

export class GatewayRequestError extends Error {
  constructor(readonly errors: GatewayError[]) {
    super(errors.map((e) => `${e.extensions?.code ?? "ERROR"}: ${e.message}`).join("; "));
  }
}

/** POSTs one named operation; resolves with its data, rejects with the gateway's errors. */
export async function request<Result, Variables extends Record<string, unknown>>(
  options: GatewayOptions,
  operationName: string,
  query: string,
  variables: Variables,
): Promise<Result> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (options.apiKey) headers.Authorization = `Bearer ${options.apiKey}`;
  if (options.issue) headers["X-Road-Issue"] = options.issue;
  const response = await fetch(options.url, {
    method: "POST",
    headers,
    body: JSON.stringify({ query, operationName, variables }),
  });
  const body = (await response.json()) as { data?: Result | null; errors?: GatewayError[] };
  if (body.errors?.length || body.data == null) {
    throw new GatewayRequestError(body.errors ?? []);
  }
  return body.data;
}

/** The owners' national IDs a notary compares with the deed's, from ParcelBeforeTransfer. */
export function ownersMissingFromDeed(data: ParcelBeforeTransferQuery): string[] {
  const parcel = data.parcel;
  if (parcel === null) return [];
  const onDeed = new Set(parcel.deed?.owners.map((owner) => owner.nationalCode) ?? []);
  return parcel.owners.map((owner) => owner.nationalCode).filter((code) => !onDeed.has(code));
}

/** What a counter tells a citizen, from ParcelDues: each unpaid item, in rials. */
export function unpaidItems(data: ParcelDuesQuery): Array<[string, number]> {
  return (data.parcel?.dues?.items ?? [])
    .filter((item) => item.outstanding > 0)
    .map((item) => [`${item.kind} ${item.period}`, item.outstanding]);
}

export const examplePlate: ParcelBeforeTransferQueryVariables = { plate: "20-130/207" };
