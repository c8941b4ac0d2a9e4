# The confirmation worker. Secrets arrive through the environment at run time, never at build time.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY tsconfig.json ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY agent ./agent
USER node
CMD ["npm", "run", "worker"]
