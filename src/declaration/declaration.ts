// Types of what the reader yields: the variables bash would hold after sourcing the declaration
// file, with where each was first assigned. The reader itself lives in reader.ts. Pure.

/** A bash variable's value as bash holds it after sourcing the file. */
export type ShellValue =
  | { kind: 'string'; value: string }
  | { kind: 'array'; elements: string[] };

export interface Variable {
  name: string;
  value: ShellValue;
  /** Line of the first assignment to this variable (1-based): instances are listed in this order. */
  line: number;
  column: number;
}

export interface Declaration {
  file: string;
  /** Every variable the file assigns, in the order of its first assignment. */
  variables: Variable[];
}
