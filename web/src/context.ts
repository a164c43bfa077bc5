import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Api } from "./api";
import type { SignedIn } from "./auth";

export interface AppServices {
  api: Api;
  user: SignedIn;
  token: () => string | null;
  /** A 401 anywhere: forget the token and ask to sign in again. */
  expired: () => void;
}

export const AppContext = createContext<AppServices | null>(null);

export function useApp(): AppServices {
  const services = useContext(AppContext);
  if (!services) throw new Error("useApp outside AppContext");
  return services;
}
