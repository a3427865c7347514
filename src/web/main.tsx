// First: it must run before uPlot's module reads navigator.language.
import './locale-guard.ts';
import { QueryCache, QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { ApiError } from './api.ts';
import { ToastProvider } from './components/Toast.tsx';
import { applyStoredTheme } from './theme.ts';
import './styles.css';

applyStoredTheme();

const queryClient: QueryClient = new QueryClient({
  // A 401 anywhere means the session ended (expired, revoked, signed out elsewhere): re-check the
  // status so the app shows the sign-in page instead of a wall of errors.
  queryCache: new QueryCache({
    onError: (error, query) => {
      if (error instanceof ApiError && error.status === 401 && query.queryKey[1] !== 'status') {
        void queryClient.invalidateQueries({ queryKey: ['auth', 'status'] });
      }
    },
  }),
  defaultOptions: {
    queries: {
      // Fresh data without reloads: refetch on focus, and retry transient failures but never 4xx.
      refetchOnWindowFocus: true,
      staleTime: 5_000,
      retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 2,
    },
  },
});

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <QueryClientProvider client={queryClient}>
        <ToastProvider>
          <App />
        </ToastProvider>
      </QueryClientProvider>
    </StrictMode>,
  );
}
